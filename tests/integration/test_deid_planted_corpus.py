"""`cohortpool deid` over a drop with unique tokens planted in every identifying place.

The corpus (tests/data/deid_corpus.py) plants tokens in every attribute Table E.1-1 names, nested
sequences, private blocks, overlays, curves, file meta, trailing elements, folder and file names,
GB18030 / UTF-8 / ISO 2022 names, free text, burned-in pixels and the CSV tables, plus every valid
transfer-syntax variant and every kind of bad input. Then every output byte and path is scanned.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from deid_corpus import NIGHT, SITE, Corpus, build_corpus, find_leaks

from cohortpool.deid import Pseudonymiser, Vault

pytestmark = pytest.mark.integration
SECRET = "planted-corpus-secret-7f3a"
PIXEL = 0x7FE00010


def run_deid(drop: Path, out: Path, vault: Path, workers: int = 2) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COHORTPOOL_SECRET": SECRET}
    command = [sys.executable, "-m", "cohortpool", "deid", str(drop), str(out), "--site", SITE,
               "--vault", str(vault), "--workers", str(workers)]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=env, check=False)


@pytest.fixture(scope="session")
def planted(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Corpus, Path, Path, subprocess.CompletedProcess[str]]:
    root = tmp_path_factory.mktemp("planted")
    corpus = build_corpus(root / "landing")
    out, vault = root / "submission", root / "vault"
    proc = run_deid(corpus.drop, out, vault)
    return corpus, out, vault, proc


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_scanner_finds_every_kind_of_planted_token_in_the_input(planted, tmp_path) -> None:
    # the negative control: the same scan over the input must see tokens of every kind
    corpus, *_ = planted
    hits = "\n".join(find_leaks(corpus.drop, corpus.literal_tokens))
    for token in [corpus.tokens[0], corpus.uids[0], *corpus.literal_tokens, *corpus.mrns]:
        assert token in hits, token
    for encoding in ("utf-16-le", "utf-16-be", "gb18030"):
        (tmp_path / encoding).write_bytes(
            f"x {corpus.tokens[5]} {corpus.uids[3]} 钟离秀英 y".encode(encoding)
        )
    found = find_leaks(tmp_path, corpus.literal_tokens)
    for encoding in ("utf-16-le", "utf-16-be", "gb18030"):
        mine = [h for h in found if h.startswith(f"file {encoding}:")]
        assert any("Q" in h and "Z" in h and "K" in h for h in mine), mine  # the ASCII token
        assert any("7777" in h or "7\\x007\\x007" in h for h in mine), mine  # the UID
        assert any("钟离秀英" in h for h in mine), mine


def test_exit_code_is_one_because_bad_inputs_were_quarantined(planted) -> None:
    *_, proc = planted
    assert proc.returncode == 1, proc.stderr


def test_no_planted_token_survives_in_any_output_byte_path_or_log(planted) -> None:
    corpus, out, _, proc = planted
    hits = find_leaks(out, corpus.literal_tokens, extra_text=proc.stdout + proc.stderr)
    assert hits == []


def test_every_input_file_is_accounted_for_with_the_expected_outcome(planted) -> None:
    corpus, out, vault, _ = planted
    rows = Vault(vault).read_ledger(NIGHT)
    assert {r.input_path: r.outcome for r in rows} == corpus.expected
    counts = {o: sum(1 for r in rows if r.outcome == o) for o in ("deidentified", "quarantined", "duplicate")}
    assert sum(counts.values()) == len(corpus.expected)
    outputs = sorted(p.relative_to(out).as_posix() for p in (out / "dicom").rglob("*.dcm"))
    assert outputs == sorted(r.output_path for r in rows if r.outcome == "deidentified")
    for row in rows:
        if row.outcome == "quarantined":
            assert row.reason
            kept = vault / "quarantine" / NIGHT / row.input_path
            assert hashlib.sha256(kept.read_bytes()).hexdigest() == row.sha256


def test_output_paths_are_built_from_pseudonyms_and_new_uids_only(planted) -> None:
    _, out, _, _ = planted
    pattern = re.compile(r"^dicom/P[0-9A-F]{16}/2\.25\.\d{1,39}/2\.25\.\d{1,39}/2\.25\.\d{1,39}\.dcm$")
    for path in (out / "dicom").rglob("*.dcm"):
        assert pattern.match(path.relative_to(out).as_posix())
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert path.relative_to(out).parts[1:] == (
            ds.PatientID,
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            f"{ds.SOPInstanceUID}.dcm",
        )


def test_pixel_data_is_byte_identical_to_the_input(planted) -> None:
    corpus, out, vault, _ = planted
    rows = {r.input_path: r for r in Vault(vault).read_ledger(NIGHT)}
    checked = 0
    for relative, pixels in corpus.pixels.items():
        row = rows[relative]
        if row.outcome != "deidentified":
            continue
        ds = pydicom.dcmread(out / row.output_path)
        assert ds[PIXEL].value == pixels, relative
        checked += 1
    assert checked >= 14


def test_outputs_parse_with_dcmtk(planted) -> None:
    if shutil.which("dcmdump") is None:
        pytest.skip("dcmtk (dcmdump) is not installed")
    _, out, _, _ = planted
    for path in (out / "dicom").rglob("*.dcm"):
        proc = subprocess.run(["dcmdump", "-q", str(path)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, (path.name, proc.stderr)
        assert "E:" not in proc.stderr


def test_markers_record_profile_edition_and_options(planted) -> None:
    _, out, _, _ = planted
    for path in (out / "dicom").rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        assert ds.PatientIdentityRemoved == "YES"
        assert "DICOM PS3.15 2026c" in ds.DeidentificationMethod[0]
        codes = {item.CodeValue for item in ds.DeidentificationMethodCodeSequence}
        assert codes == {"113100", "113105", "113107", "113108"}
        assert ds.LongitudinalTemporalInformationModified == "MODIFIED"
        assert not [e for e in ds if e.tag.is_private]


def test_references_between_instances_use_the_same_new_uids(planted) -> None:
    _, out, _, _ = planted
    sops, referenced, frames = set(), set(), {}
    for path in (out / "dicom").rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        sops.add(ds.SOPInstanceUID)
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        for item in ds.get("ReferencedImageSequence", []):
            referenced.add(item.ReferencedSOPInstanceUID)
        frames.setdefault(ds.StudyInstanceUID, set()).add(ds.FrameOfReferenceUID)
    assert referenced & sops  # the second CT of each patient references the first by its new UID
    assert all(len(f) == 1 for f in frames.values())


def test_dicom_and_csv_pseudonyms_link(planted) -> None:
    corpus, out, _, _ = planted
    keys = Pseudonymiser(SECRET.encode(), SITE)
    clinical = list(csv.DictReader((out / "clinical.csv").open(encoding="utf-8")))
    reads = list(csv.DictReader((out / "reads.csv").open(encoding="utf-8")))
    manifest = list(csv.DictReader((out / "imaging_manifest.csv").open(encoding="utf-8")))
    expected_patients = {keys.patient_id(m) for m in corpus.mrns}
    assert {r["patient_id"] for r in clinical} == expected_patients
    assert {r["patient_id"] for r in manifest} == expected_patients
    assert {r["accession_id"] for r in reads} <= {r["accession_id"] for r in manifest}
    dicom_patients = {pydicom.dcmread(p).PatientID for p in (out / "dicom").rglob("*.dcm")}
    assert dicom_patients == expected_patients
    accession_digests = {pydicom.dcmread(p).AccessionNumber for p in (out / "dicom").rglob("*.dcm")}
    assert {"A" + a for a in accession_digests} == {r["accession_id"] for r in manifest}
    # the first exam date is shifted by the same keyed offset as the images' dates
    assert all(r["first_exam_date"] != "2024-03-01" for r in clinical)
    assert {r["age_years"] for r in clinical} == {"92"}


def test_same_input_and_secret_give_byte_identical_output_and_second_run_changes_nothing(
    planted, tmp_path
) -> None:
    corpus, shared_out, shared_vault, _ = planted
    out, vault = tmp_path / "again" / "out", tmp_path / "again" / "vault"
    shutil.copytree(shared_out, out)
    shutil.copytree(shared_vault, vault)
    first = _tree_digest(out)
    vault_before = _tree_digest(vault)
    again = run_deid(corpus.drop, out, vault, workers=1)
    assert again.returncode == 1
    assert _tree_digest(out) == first
    assert _tree_digest(vault) == vault_before
    fresh_out, fresh_vault = tmp_path / "fresh" / "out", tmp_path / "fresh" / "vault"
    run_deid(corpus.drop, fresh_out, fresh_vault, workers=2)
    assert _tree_digest(fresh_out) == first


def test_vault_is_owner_only(planted) -> None:
    _, _, vault, _ = planted
    for path in [vault, *vault.rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode in (0o700, 0o600), (path, oct(mode))


def test_submission_json_lists_every_output_with_its_true_sha256(planted) -> None:
    _, out, _, _ = planted
    listed = json.loads((out / "submission.json").read_text(encoding="utf-8"))["files"]
    assert listed == {k: v for k, v in _tree_digest(out).items() if k != "submission.json"}


def test_each_patient_has_its_own_keyed_date_shift_and_device_identity_is_gone(planted) -> None:
    # what dicognito gets wrong (one shared offset, serial number kept) and deid too (station, institution)
    corpus, out, _, _ = planted
    keys = Pseudonymiser(SECRET.encode(), SITE)
    shifts = {}
    for path in (out / "dicom").rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        shifts.setdefault(ds.PatientID, set()).add(ds.StudyDate)
        assert ds.get("DeviceSerialNumber") in (None, "", "REMOVED")
        assert ds.get("StationName") in (None, "", "REMOVED")
        assert ds.get("InstitutionName") in (None, "", "REMOVED")
    expected = {
        keys.patient_id(mrn): {(date(2024, 3, 1) + timedelta(days=keys.shift_days(mrn))).strftime("%Y%m%d")}
        for mrn in corpus.mrns
    }
    assert shifts == expected
    assert len({next(iter(v)) for v in expected.values()}) == 2
