"""submission.json: every file with its sha256, deterministic."""

from __future__ import annotations

import hashlib
import json

from cohortpool.features.package import package_submission


def test_submission_lists_every_file_with_sha256_and_is_deterministic(tmp_path) -> None:
    (tmp_path / "dicom" / "P1").mkdir(parents=True)
    (tmp_path / "dicom" / "P1" / "x.dcm").write_bytes(b"abc")
    (tmp_path / "clinical.csv").write_text("a\n")
    profile = {"edition": "DICOM PS3.15 2024b", "options": ["clean_descriptors"], "allow_burned_in": False}
    path = package_submission(tmp_path, "site01", "2024-01-01", profile, {"input_files": 1}, "0.1.0")
    first = path.read_bytes()
    doc = json.loads(first)
    assert doc["files"] == {
        "clinical.csv": hashlib.sha256(b"a\n").hexdigest(),
        "dicom/P1/x.dcm": hashlib.sha256(b"abc").hexdigest(),
    }
    assert doc["profile"]["edition"] == "DICOM PS3.15 2024b" and doc["site_id"] == "site01"
    assert (
        package_submission(
            tmp_path, "site01", "2024-01-01", profile, {"input_files": 1}, "0.1.0"
        ).read_bytes()
        == first
    )


def test_a_sealed_submission_is_deterministic_and_its_seal_is_the_secrets(tmp_path) -> None:
    from cohortpool.contract.seal import MAC_FIELD, canonical_bytes, seal_matches

    secret, other = b"1" * 32 + b"a" * 32, b"2" * 32 + b"b" * 32
    (tmp_path / "clinical.csv").write_text("a\n")
    made = []
    for key in (secret, secret, other):
        path = package_submission(tmp_path, "site01", "2024-01-01", {}, {"rows": 1}, "0.1.0", secret=key)
        made.append(path.read_bytes())
    assert made[0] == made[1] != made[2]  # same inputs and secret: byte-identical
    document = json.loads(made[0])
    assert len(document[MAC_FIELD]) == 64 and canonical_bytes(document) == made[0]
    assert seal_matches(secret, document) and not seal_matches(other, document)
    document["counts"]["rows"] = 2
    assert not seal_matches(secret, document)
    unsealed = package_submission(tmp_path, "site01", "2024-01-01", {}, {"rows": 1}, "0.1.0").read_bytes()
    assert MAC_FIELD not in json.loads(unsealed)
