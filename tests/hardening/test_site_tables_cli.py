"""The site tables through the real ``cohortpool deid``: refusals and reasons in the site's own terms
(issue 16 items 2 and 7), withdrawn patients (16.5), and the k-anonymity verdict with generalisations
(13.5)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from support import cli

from cohortpool.contract import FINDINGS
from cohortpool.contract.tables import CLINICAL, READS
from cohortpool.features.kanon import BLOCKED_FILE, SUBMISSION_FILE
from config_support import write_config

pytestmark = pytest.mark.xdist_group("hardening-site-tables")
NIGHT = "2024-05-06"
SITE = "site01"


def _dicom(path: Path, mrn: str, number: int, age: str = "073Y") -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.9.4444.{number}.1"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.9.4444.{number}"
    ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.9.4444.{number}.2"
    ds.PatientID, ds.PatientName, ds.AccessionNumber = mrn, "Doe^Jane", f"ACC{number}"
    ds.StudyDate, ds.Modality, ds.PatientSex, ds.PatientAge = "20241231", "CT", "F", age
    ds.Rows, ds.Columns = 4, 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(4 * 4 * 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def _patient(mrn: str, birth: str = "1950-06-15", exam: str = "2024-12-31") -> list[str]:
    row = {"mrn": mrn, "patient_name": "Doe^Jane", "birth_date": birth, "sex": "F", "address": "x",
           "phone": "1", "height_cm": "160", "weight_kg": "61", "bmi": "23.83", "dxa_t_score": "-2.9",
           "diagnosis": "OP", "pathology_confirmed": "no", "primary_tumour": "",
           "first_exam_date": exam}  # fmt: skip
    return [row[c] for c in CLINICAL.export_columns]


def _read(mrn: str, number: int) -> list[str]:
    row = {"mrn": mrn, "accession_number": f"ACC{number}", "modality": "CT", "level": "L1", "reader": "Dr X",
           "read_date": "2024-03-02", **dict.fromkeys(FINDINGS, "no"), "genant_grade": "2",
           "height_loss_pct": "31.5"}  # fmt: skip
    return [row[c] for c in READS.export_columns]


def _drop(root: Path, patients: list[list[str]], dicom: bool = True) -> Path:
    drop = root / "landing" / SITE / NIGHT
    mrns = [p[0] for p in patients]
    if dicom:
        for number, (mrn, row) in enumerate(zip(mrns, patients, strict=True), start=1):
            age = max(0, 2024 - int(row[2][:4]) - 1) if row[2][:4].isdigit() else 70
            _dicom(drop / "dicom" / f"IM{number}.dcm", mrn, number, f"{age:03d}Y")
    else:
        drop.mkdir(parents=True)
    _csv(drop / "clinical.csv", list(CLINICAL.export_columns), patients)
    _csv(drop / "reads.csv", list(READS.export_columns), [_read(m, n) for n, m in enumerate(mrns, start=1)])
    return drop


def _deid(root: Path, drop: Path, **env: str) -> tuple[int, str, str, Path, Path]:
    out, vault = root / "submission", root / "vault"
    settings = {"COHORTPOOL_CONFIG": str(write_config(root / "cohortpool.yaml", sites=(SITE,))), **env}
    proc = cli(
        "deid", str(drop), str(out), "--site", SITE, "--vault", str(vault), "--workers", "1", env=settings
    )
    return proc.returncode, proc.stdout, proc.stderr, out, vault


def test_a_repeated_header_refuses_the_table_naming_the_column(tmp_path: Path) -> None:
    drop = _drop(tmp_path, [_patient("M1"), _patient("M2")])
    header, *body = (drop / "clinical.csv").read_text(encoding="utf-8").splitlines()
    (drop / "clinical.csv").write_text("\n".join([header + ",bmi", *(r + ",230" for r in body)]) + "\n")
    code, _, stderr, out, _ = _deid(tmp_path, drop)
    assert code == 1, stderr
    assert "clinical.csv: the header names column(s) bmi more than once" in stderr
    assert "keep one column of each name" in stderr
    assert not (out / "clinical.csv").exists()  # refused whole: no copy of either column leaves
    listed = json.loads((out / SUBMISSION_FILE).read_text())["files"]
    assert "clinical.csv" not in listed and "reads.csv" in listed


def test_a_birth_date_after_the_first_exam_is_reported_in_the_sites_terms(tmp_path: Path) -> None:
    drop = _drop(tmp_path, [_patient("M1"), _patient("M2", birth="2025-01-02"), _patient("M3")])
    code, stdout, stderr, out, vault = _deid(tmp_path, drop)
    assert code == 0, stderr  # the night goes on: the hub quarantines the row, the site is told why
    assert (
        "table: clinical.csv birth_date, row 2 (a date after first_exam_date): age_years cannot be derived "
        "and is left empty, the hub quarantines the row; fix: correct birth_date or first_exam_date"
    ) in stdout
    assert f"table: originals and every row: {vault / 'tables' / f'{NIGHT}.csv'}" in stdout
    assert "2025-01-02" not in stdout + stderr  # the value itself stays in the vault
    with (vault / "tables" / f"{NIGHT}.csv").open(encoding="utf-8", newline="") as handle:
        found = next(csv.DictReader(handle))
    assert (found["column"], found["source_row"], found["line"], found["original"]) == (
        "birth_date",
        "2",
        "3",
        "2025-01-02",
    )
    assert (out / SUBMISSION_FILE).is_file()


def test_a_first_exam_date_the_shift_cannot_move_does_not_lose_the_night(tmp_path: Path) -> None:
    # was: OverflowError with a traceback, exit 1, OUT left with dicom/ only (no tables, no submission.json)
    drop = _drop(tmp_path, [_patient("M1"), _patient("M2", exam="0001-01-05"), _patient("M3")])
    code, stdout, stderr, out, _ = _deid(tmp_path, drop)
    assert code == 0, stderr
    assert "Traceback" not in stderr and "0001-01-05" not in stdout + stderr
    assert (
        "table: clinical.csv first_exam_date, row 2 (a date at the edge of the calendar (year 1 or 9999): it "
        "cannot be shifted): first_exam_date and age_years left empty, the hub quarantines the row; fix: "
        "write the first exam date as YYYY-MM-DD"
    ) in stdout
    listed = json.loads((out / SUBMISSION_FILE).read_text())["files"]
    assert "clinical.csv" in listed and "reads.csv" in listed
    with (out / "clinical.csv").open(encoding="utf-8", newline="") as handle:
        released = list(csv.DictReader(handle))
    assert [r["first_exam_date"] == "" for r in released] == [False, True, False]


def test_a_headerless_table_is_refused_without_repeating_its_first_row(tmp_path: Path) -> None:
    # was: "the header names column(s) ZY04014967 more than once": the MRN printed to stderr
    mrn = "ZY04014967"
    drop = _drop(tmp_path, [_patient(mrn), _patient("M2")])
    first = _patient(mrn)
    first[CLINICAL.export_columns.index("phone")] = mrn  # the first row repeats a value
    _csv(drop / "clinical.csv", first, [_patient("M2")])  # no header row
    code, stdout, stderr, out, _ = _deid(tmp_path, drop)
    assert code == 1
    assert "clinical.csv: the first line is not a header: it names none of the contract's columns" in stderr
    assert mrn not in stdout + stderr
    assert not (out / "clinical.csv").exists() and (out / "reads.csv").exists()


def test_withdrawn_patients_leave_only_as_pseudonyms(tmp_path: Path) -> None:
    drop = _drop(tmp_path, [_patient("M1"), _patient("M2"), _patient("M3")])
    _csv(drop / "withdrawn.csv", ["mrn"], [["M2"]])
    _, _, _, out, vault = _deid(tmp_path, drop)
    with (out / "withdrawn.csv").open(encoding="utf-8", newline="") as handle:
        withdrawn = list(csv.DictReader(handle))
    assert len(withdrawn) == 1 and withdrawn[0]["site_id"] == SITE
    gone = withdrawn[0]["patient_id"]
    clinical = (out / "clinical.csv").read_text(encoding="utf-8")
    assert gone not in clinical and gone not in (out / "reads.csv").read_text(encoding="utf-8")
    assert clinical.count("\n") == 3  # header + 2 patients
    # their de-identified images are held back too, and the vault says which outputs were
    assert not (out / "dicom" / gone).exists() and len(list((out / "dicom").iterdir())) == 2
    assert gone not in (out / "imaging_manifest.csv").read_text(encoding="utf-8")
    with (vault / "withdrawn" / f"{NIGHT}.csv").open(encoding="utf-8", newline="") as handle:
        held = list(csv.DictReader(handle))
    assert [r["patient_id"] for r in held] == [gone] and held[0]["output_path"].startswith(f"dicom/{gone}/")
    manifest = json.loads((out / SUBMISSION_FILE).read_text())
    assert "withdrawn.csv" in manifest["files"] and not any(gone in f for f in manifest["files"])
    assert manifest["counts"]["withdrawn_patients"] == 1 and manifest["counts"]["withdrawn_files"] == 1
    assert manifest["tables"]["site_findings"]["withdrawn_rows"] == {"clinical.csv": 1, "reads.csv": 1}
    assert manifest["privacy"]["rows"] == 2  # k is counted over what is released


def test_the_withdrawal_list_is_not_taken_for_an_image(tmp_path: Path) -> None:
    drop = _drop(tmp_path, [_patient("M1"), _patient("M2")])
    _csv(drop / "withdrawn.csv", ["mrn"], [["M2"]])
    code, stdout, stderr, _, _ = _deid(tmp_path, drop)
    assert code == 0, stdout + stderr
    assert "input_files 2, deidentified 2, quarantined 0," in stdout  # the two images, not the list


def test_an_unreadable_withdrawal_list_withholds_the_night(tmp_path: Path) -> None:
    drop = _drop(tmp_path, [_patient("M1"), _patient("M2")])
    (drop / "withdrawn.csv").write_text("mrn,mrn\nM2,M2\n", encoding="utf-8")
    code, _, stderr, out, _ = _deid(tmp_path, drop)
    assert code == 1
    assert "withdrawn.csv: the header names column(s) mrn more than once" in stderr
    assert "nothing of this night is released" in stderr
    assert not (out / SUBMISSION_FILE).exists() and (out / BLOCKED_FILE).exists()


def _ages(root: Path, dicom: bool) -> Path:
    # four patients of 71 to 74 at the first exam (the last day of a year: shifted back by up to 365 days
    # it stays in that year), same sex: unique by age, one class in 5-year bands
    births = ["1953-06-15", "1952-06-15", "1951-06-15", "1950-06-15"]
    return _drop(root, [_patient(f"M{i}", birth=b) for i, b in enumerate(births)], dicom=dicom)


def test_the_verdict_names_what_splits_the_patients_and_bands_reach_the_minimum(tmp_path: Path) -> None:
    drop = _ages(tmp_path / "exact", dicom=False)
    code, stdout, stderr, out, _ = _deid(tmp_path / "exact", drop, COHORTPOOL_MIN_K_ANONYMITY="4")
    assert code == 1 and "release blocked: k-anonymity 1 is below the minimum 4" in stderr
    assert "  4 of 4 patients in classes of fewer than 4 (4 of size 1)" in stdout
    assert "what splits them: age_years (k 4 without it; alone separates 4 of them)" in stdout
    assert (out / BLOCKED_FILE).exists()

    banded = tmp_path / "banded"
    drop = _ages(banded, dicom=False)
    env = {"COHORTPOOL_MIN_K_ANONYMITY": "4", "COHORTPOOL_TABLES__AGE_BAND_YEARS": "5"}
    code, stdout, stderr, out, _ = _deid(banded, drop, **env)
    assert "k-anonymity 4 over age_years, sex, site_id, first_exam_date" in stdout, stdout + stderr
    assert "generalisations of the tables: age in 5-year bands" in stdout
    manifest = json.loads((out / SUBMISSION_FILE).read_text())
    assert manifest["privacy"]["generalisations"]["age_band_years"] == 5
    assert manifest["privacy"]["k_anonymity"] == 4 and not manifest["privacy"]["release_blocked"]
    with (out / "clinical.csv").open(encoding="utf-8", newline="") as handle:
        assert {r["age_years"] for r in csv.DictReader(handle)} == {"70"}


def test_the_dicom_headers_are_counted_as_released(tmp_path: Path) -> None:
    # the same bands, but the images keep each PatientAge: k is the headers', and the verdict says so
    drop = _ages(tmp_path, dicom=True)
    env = {"COHORTPOOL_MIN_K_ANONYMITY": "4", "COHORTPOOL_TABLES__AGE_BAND_YEARS": "5"}
    code, stdout, stderr, out, _ = _deid(tmp_path, drop, **env)
    assert code == 1 and "in the DICOM headers" in stderr
    assert "the smallest k is in the DICOM headers" in stdout
    assert "the tables' generalisations do not reach them" in stdout
    privacy = json.loads((out / BLOCKED_FILE).read_text())["privacy"]
    assert (
        privacy["sources"]["clinical.csv"]["k_anonymity"] == 4
        and privacy["sources"]["dicom"]["k_anonymity"] == 1
    )
