"""A vault belongs to one key: a second `cohortpool deid` with another secret is refused, nothing changes.

A site with a mistyped key would otherwise add a second, unlinkable pseudonym for every patient to
its crosswalk (issue 14). The vault records the key's fingerprint on first use
(:func:`cohortpool.contract.keys.key_fingerprint`); another secret exits 2 with one line naming both
fingerprints, before anything is written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.contract.keys import key_fingerprint
from cohortpool.deid import KeyMismatchError, Vault, check_vault_key

FIRST = "3c1f9a0b7e5d2468ac13f0b9e7d5c3a18f2e6b4d0a9c7e5f1b3d5a7c9e2f4b6d"  # 64 hex: strong, as issue 14 asks
SECOND = "9e8d7c6b5a49382716f5e4d3c2b1a0f9e8d7c6b5a4938271605f4e3d2c1b0a98"
NIGHT = "2024-05-06"


def _drop(root: Path) -> Path:
    drop = root / "site01" / NIGHT
    for n in range(2):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", f"1.2.3.1.{n}"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3", "1.2.3.2"
        ds.PatientID, ds.PatientName, ds.Modality = "MRN42", "Doe^Jane", "CT"
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 2, 2, 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = bytes(4)
        path = drop / "dicom" / f"IM{n}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
    return drop


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _deid(drop: Path, out: Path, vault: Path, secret: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COHORTPOOL_SECRET", secret)
    args = ["deid", str(drop), str(out), "--site", "site01", "--vault", str(vault), "--workers", "1"]
    return CliRunner().invoke(app, args)


@pytest.fixture
def first_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    drop, out, vault = _drop(tmp_path), tmp_path / "out", tmp_path / "vault"
    result = _deid(drop, out, vault, FIRST, monkeypatch)
    assert result.exit_code == 0, result.output
    return drop, out, vault


def test_the_first_run_records_the_keys_fingerprint(first_run) -> None:
    _, _, vault = first_run
    recorded = (vault / "key_fingerprint").read_text().strip()
    assert recorded == key_fingerprint(FIRST.encode()) and FIRST not in recorded
    assert (vault / "key_fingerprint").stat().st_mode & 0o777 == 0o600


def test_another_secret_exits_2_with_one_line_naming_both_fingerprints_and_changes_nothing(
    first_run, monkeypatch
) -> None:
    drop, out, vault = first_run
    vault_before = _tree(vault)
    dicom_before = _tree(out / "dicom")
    result = _deid(drop, out, vault, SECOND, monkeypatch)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert key_fingerprint(FIRST.encode()) in lines[0] and key_fingerprint(SECOND.encode()) in lines[0]
    assert FIRST not in result.output and SECOND not in result.output
    assert _tree(vault) == vault_before  # crosswalk, ledger, fingerprint, quarantine
    assert _tree(out / "dicom") == dicom_before
    crosswalk = (vault / "crosswalk.csv").read_text().splitlines()
    assert len(crosswalk) == 2  # the header and the one patient: no second pseudonym


def test_another_secret_leaves_the_submission_json_in_place(first_run, monkeypatch) -> None:
    drop, out, vault = first_run
    before = _tree(out)
    _deid(drop, out, vault, SECOND, monkeypatch)
    assert _tree(out) == before


def test_the_same_secret_runs_again_and_a_vault_without_a_fingerprint_accepts_any(
    first_run, tmp_path
) -> None:
    _, _, vault = first_run
    check_vault_key(vault, FIRST.encode())  # the same key: accepted
    with pytest.raises(KeyMismatchError, match=key_fingerprint(SECOND.encode())):
        check_vault_key(vault, SECOND.encode())
    check_vault_key(tmp_path / "new-vault", SECOND.encode())  # first use: nothing recorded yet
    assert not (tmp_path / "new-vault").exists()  # the check writes nothing
    Vault(tmp_path / "new-vault").record_key(SECOND.encode())
    with pytest.raises(KeyMismatchError):
        check_vault_key(tmp_path / "new-vault", FIRST.encode())
