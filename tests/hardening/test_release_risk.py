"""The re-identification risk of a submission is reported, and a configured minimum k blocks its release."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian
from support import cli

from cohortpool.synth import write_consortium

pytestmark = [pytest.mark.xdist_group("hardening-release"), pytest.mark.integration]


def test_k_anonymity_is_reported_and_a_minimum_withholds_the_submission(tmp_path: Path) -> None:
    write_consortium(tmp_path / "landing", sites=1, max_patients=3)
    drop = next((tmp_path / "landing" / "site01").iterdir())
    out, vault = tmp_path / "submission", tmp_path / "vault"
    args = ("deid", str(drop), str(out), "--site", "site01", "--vault", str(vault), "--workers", "1")

    blocked = cli(*args, env={"COHORTPOOL_MIN_K_ANONYMITY": "2"})
    assert blocked.returncode == 1, blocked.stderr
    assert "release blocked: k-anonymity 1 is below the minimum 2" in blocked.stderr
    assert not (out / "submission.json").exists()
    privacy = json.loads((out / "release_blocked.json").read_text())["privacy"]
    assert privacy["release_blocked"] is True and privacy["rows_below_min_k"] == 3
    # the hub cannot take a withheld folder for a submission
    refused = cli("validate", str(out), "--out", str(tmp_path / "validated"))
    assert refused.returncode == 2
    assert "withheld" in refused.stderr and "release_blocked.json" in refused.stderr

    released = cli(*args)  # the default: the check is off, k is still reported
    assert released.returncode == 0, released.stderr
    assert not (out / "release_blocked.json").exists()
    privacy = json.loads((out / "submission.json").read_text())["privacy"]
    assert privacy["k_anonymity"] == 1 and privacy["min_k_anonymity"] == 0
    assert privacy["date_precision"] == "year"  # dates shifted by up to a year: linkable to the year
    assert privacy["quasi_identifiers"] == ["age_years", "sex", "site_id", "first_exam_date"]
    assert "release_blocked.json" not in json.loads((out / "submission.json").read_text())["files"]


def test_a_dicom_only_submission_is_held_to_the_minimum_k(tmp_path: Path) -> None:
    # its headers keep PatientAge, PatientSex and the shifted study dates: it used to get k = 0 and pass
    write_consortium(tmp_path / "landing", sites=1, max_patients=3)
    drop = next((tmp_path / "landing" / "site01").iterdir())
    for table in drop.glob("*.csv"):
        table.unlink()
    out, vault = tmp_path / "submission", tmp_path / "vault"
    args = ("deid", str(drop), str(out), "--site", "site01", "--vault", str(vault), "--workers", "1")

    blocked = cli(*args, env={"COHORTPOOL_MIN_K_ANONYMITY": "2"})
    assert blocked.returncode == 1, blocked.stderr
    assert "release blocked: k-anonymity 1 is below the minimum 2" in blocked.stderr
    assert "in the DICOM headers" in blocked.stderr
    assert not (out / "submission.json").exists()
    privacy = json.loads((out / "release_blocked.json").read_text())["privacy"]
    assert privacy["k_source"] == "dicom" and privacy["rows"] == 3 and privacy["rows_below_min_k"] == 3

    released = cli(*args)  # the check off: released, and k still says where it came from
    assert released.returncode == 0, released.stderr
    privacy = json.loads((out / "submission.json").read_text())["privacy"]
    assert (privacy["k_anonymity"], privacy["k_source"], privacy["release_blocked"]) == (1, "dicom", False)
    assert privacy["sources"]["dicom"]["quasi_identifiers"] == list(privacy["quasi_identifiers"])


def _dicom_drop(root: Path, patients: list[tuple[str, str, str]]) -> Path:
    """A DICOM-only drop: one instance per (MRN, PatientAge, PatientSex), no study date (with pixel data:
    an instance without is quarantined)."""
    drop = root / "site01" / "2024-05-06"
    for number, (mrn, age, sex) in enumerate(patients, start=1):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT: a tiny image
        ds.Rows = ds.Columns = 4
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = bytes(32)
        ds.SOPInstanceUID, ds.StudyInstanceUID = f"1.2.3.{number}.3", f"1.2.3.{number}.1"
        ds.SeriesInstanceUID, ds.Modality = f"1.2.3.{number}.2", "CT"
        ds.PatientID, ds.PatientName, ds.PatientAge, ds.PatientSex = mrn, "Doe^Jane", age, sex
        folder = drop / "dicom" / mrn
        folder.mkdir(parents=True)
        ds.save_as(folder / "IM1.dcm", enforce_file_format=True)
    return drop


def test_the_dicom_k_counts_what_the_profile_keeps_and_a_release_at_the_minimum_passes(
    tmp_path: Path,
) -> None:
    drop = _dicom_drop(tmp_path, [("MRN1", "070Y", "F"), ("MRN2", "070Y", "F"), ("MRN3", "060Y", "M"),
                                  ("MRN4", "060Y", "M")])  # fmt: skip
    out, vault = tmp_path / "submission", tmp_path / "vault"
    args = ("deid", str(drop), str(out), "--site", "site01", "--vault", str(vault), "--workers", "1")

    at_minimum = cli(*args, env={"COHORTPOOL_MIN_K_ANONYMITY": "2"})
    assert at_minimum.returncode == 0, at_minimum.stderr
    privacy = json.loads((out / "submission.json").read_text())["privacy"]
    assert (privacy["k_anonymity"], privacy["k_source"], privacy["equivalence_classes"]) == (2, "dicom", 2)

    # without Retain Patient Characteristics the headers lose age and sex: all four are one class
    no_characteristics = json.dumps(["retain_long_modified_dates", "clean_descriptors"])
    env = {"COHORTPOOL_MIN_K_ANONYMITY": "4", "COHORTPOOL_DEID__OPTIONS": no_characteristics}
    generalised = cli(*args, env=env)
    assert generalised.returncode == 0, generalised.stderr
    privacy = json.loads((out / "submission.json").read_text())["privacy"]
    assert privacy["k_anonymity"] == 4
    assert privacy["sources"]["dicom"]["quasi_identifiers"] == ["site_id", "first_exam_date"]


def test_table_rows_with_nothing_to_assess_k_from_are_withheld_under_a_minimum(tmp_path: Path) -> None:
    write_consortium(tmp_path / "landing", sites=1, max_patients=3)
    drop = next((tmp_path / "landing" / "site01").iterdir())
    shutil.rmtree(drop / "dicom")
    clinical = drop / "clinical.csv"
    clinical.write_text(clinical.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    out, vault = tmp_path / "submission", tmp_path / "vault"
    args = ("deid", str(drop), str(out), "--site", "site01", "--vault", str(vault), "--workers", "1")

    blocked = cli(*args, env={"COHORTPOOL_MIN_K_ANONYMITY": "2"})
    assert blocked.returncode == 1, blocked.stderr
    assert "k-anonymity cannot be assessed" in blocked.stderr
    privacy = json.loads((out / "release_blocked.json").read_text())["privacy"]
    assert privacy["assessed"] is False and privacy["release_blocked"] is True
    assert not (out / "submission.json").exists()
