"""`find_submissions`: one site's odd submission.json never stops the hub from listing the others.

Real folders under ``OUT/submissions/<site>/<night>/`` as a hand copy leaves them; the hub flow then
refuses the unreadable one at its verify step (tests/integration/test_hub_odd_manifests.py).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from cohortpool.contract.files import sha256_file
from cohortpool.pipeline.hub import find_submissions

NIGHT = "2025-03-01"
COUNTS = {"input_files": 12, "deidentified": 10, "quarantined": 1, "duplicate": 1}


def _submission(root: Path, site: str, text: str) -> Path:
    folder = root / site / NIGHT
    folder.mkdir(parents=True)
    (folder / "submission.json").write_text(text, encoding="utf-8")
    return folder


def _manifest(site: str, **facts: object) -> str:
    return json.dumps({"site_id": site, "night": NIGHT, **facts})


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (_manifest("site02"), "counts is missing"),
        (_manifest("site02", counts=[1, 2]), "counts is a JSON list, not an object"),
        (_manifest("site02", counts="12"), "counts is a JSON string, not an object"),
        ('{"site_id": "site02", "night": ', "not readable JSON"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_an_odd_manifest_is_listed_by_its_folder_and_the_others_with_their_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, why: str
) -> None:
    good = _submission(tmp_path, "site01", _manifest("site01", counts=COUNTS))
    odd = _submission(tmp_path, "site02", text)
    third = _submission(tmp_path, "site03", _manifest("site03", counts=COUNTS))

    with caplog.at_level(logging.WARNING, logger="cohortpool.pipeline.hub"):
        found = find_submissions(tmp_path)

    assert [(s.site_id, s.night, s.path) for s in found] == [
        ("site01", NIGHT, good),
        ("site02", NIGHT, odd),
        ("site03", NIGHT, third),
    ]
    assert found[0].counts == COUNTS and found[2].counts == COUNTS
    assert found[1].counts == {}
    assert found[1].sha256 == sha256_file(odd / "submission.json")  # verify's cache key: this version
    [warning] = caplog.records
    assert str(odd / "submission.json") in warning.getMessage()
    assert why in warning.getMessage()
    assert "package and push the night again" in warning.getMessage()


def test_counts_that_are_not_counts_are_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    odd = {"input_files": "12", "deidentified": 10, "quarantined": -1, "duplicate": True, "series": 3}
    _submission(tmp_path, "site01", _manifest("site01", counts=odd))

    with caplog.at_level(logging.WARNING, logger="cohortpool.pipeline.hub"):
        [found] = find_submissions(tmp_path)

    assert found.counts == {"deidentified": 10, "series": 3}
    assert "counts.input_files is not a non-negative integer" in caplog.text


def test_a_manifest_that_cannot_be_read_is_listed_for_verify_to_refuse(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _submission(tmp_path, "site01", _manifest("site01", counts=COUNTS))
    folder = tmp_path / "site02" / NIGHT
    (folder / "submission.json").mkdir(parents=True)  # not a file: reading it fails

    with caplog.at_level(logging.WARNING, logger="cohortpool.pipeline.hub"):
        found = find_submissions(tmp_path)

    assert [(s.site_id, s.path, s.counts) for s in found] == [
        ("site01", tmp_path / "site01" / NIGHT, COUNTS),
        ("site02", folder, {}),
    ]
    assert "cannot be read" in caplog.text


def test_the_folder_names_the_site_night_whatever_the_manifest_says(tmp_path: Path) -> None:
    folder = _submission(tmp_path, "site02", json.dumps({"site_id": "site01", "night": "2025-02-01"}))

    [found] = find_submissions(tmp_path)

    # verify compares the two and refuses the mismatch; the key never collides with site01's own night
    assert (found.site_id, found.night, found.path) == ("site02", NIGHT, folder)
