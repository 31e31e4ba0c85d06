"""No free text leaves a site (issue 13 item 3): identifiers typed into every column of the site tables
reach neither the submission nor anything the hub writes.

A site drop of three patients with one small DICOM file each: patient 1 is clean, patient 2 carries
the issue's example in ``primary_tumour`` (``lung; pt <MRN> <name> tel <phone>``: the row is otherwise
valid, so the hub loads it), patient 3 has an identifier typed into every column of ``clinical.csv`` and
of its ``reads.csv`` row, and an extra column holds one too. Everything goes through the real
``cohortpool deid``, ``cohortpool validate`` and ``cohortpool load``; then every byte and path of the
submission, the validated batch (quarantine.csv, warnings.csv, Data Docs, summary.json, the accepted
Parquet cells) and every text cell of the warehouse, plus the commands' output, must hold none of the
planted tokens (``find_leaks``: any ``QZnnnnnK`` token in any encoding, and the literal name and phone
number). Negative control: the same scan finds the tokens in the drop and in the site's vault.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from support import cli

from cohortpool.contract import FINDINGS
from cohortpool.contract.tables import CLINICAL, INVALID, READS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from deid_corpus import find_leaks

pytestmark = [pytest.mark.xdist_group("hardening-free-text"), pytest.mark.integration]
NIGHT = "2024-05-06"
SITE = "site01"
MRNS = ("QZ00101K", "QZ00102K", "QZ00103K")
NAME = "Zebedee Quuxworth"
PHONE = "020 7946 0958"
#: the issue's example, typed into primary_tumour of an otherwise valid row
EXAMPLE = f"lung; pt {MRNS[1]} {NAME} tel {PHONE}"


def _token(n: int) -> str:
    return f"QZ{n:05d}K"


def _dicom(path: Path, mrn: str, number: int) -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = f"1.2.826.0.1.3680043.9.4343.{number}.1"
    ds.StudyInstanceUID = f"1.2.826.0.1.3680043.9.4343.{number}"
    ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.9.4343.{number}.2"
    ds.PatientID, ds.PatientName, ds.AccessionNumber = mrn, "Quuxworth^Zebedee", f"ACC{number}"
    ds.StudyDate, ds.Modality, ds.PatientSex, ds.PatientAge = "20240301", "CT", "F", "073Y"
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


def _clean(mrn: str) -> dict[str, str]:
    return {
        "mrn": mrn, "patient_name": NAME, "birth_date": "1950-06-15", "sex": "F", "address": "1 QZ Road",
        "phone": PHONE, "height_cm": "160", "weight_kg": "61", "bmi": "23.83", "dxa_t_score": "-2.9",
        "diagnosis": "MET", "pathology_confirmed": "yes", "primary_tumour": "lung",
        "first_exam_date": "2024-03-01", "notes": "",
    }  # fmt: skip


def _read(mrn: str, number: int) -> dict[str, str]:
    return {"mrn": mrn, "accession_number": f"ACC{number}", "modality": "CT", "level": "L1", "reader": NAME,
            "read_date": "2024-03-02", **dict.fromkeys(FINDINGS, "no"), "genant_grade": "2",
            "height_loss_pct": "31.5"}  # fmt: skip


def _drop(root: Path) -> Path:
    drop = root / SITE / NIGHT
    for number, mrn in enumerate(MRNS, start=1):
        _dicom(drop / "dicom" / f"IM{number}.dcm", mrn, number)
    clinical = [_clean(MRNS[0]), {**_clean(MRNS[1]), "primary_tumour": EXAMPLE}]
    typed = iter(range(200, 300))
    evil = {c: f"{_token(next(typed))} {NAME}" for c in _clean(MRNS[2])}  # every column, the extra one too
    evil["mrn"] = MRNS[2]
    evil["bmi"] = "02079460958"  # a phone number where a number is expected
    clinical.append(evil)
    header = [*CLINICAL.export_columns, "notes"]
    _table(drop / "clinical.csv", header, [[row[c] for c in header] for row in clinical])
    reads = [_read(MRNS[0], 1), _read(MRNS[1], 2)]
    evil_read = {c: f"{_token(next(typed))} tel {PHONE}" for c in _read(MRNS[2], 3)}
    evil_read["mrn"] = MRNS[2]
    reads.append(evil_read)
    _table(
        drop / "reads.csv", list(READS.export_columns), [[r[c] for c in READS.export_columns] for r in reads]
    )
    return drop


@pytest.fixture(scope="module")
def through_the_hub(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | str]:
    root = tmp_path_factory.mktemp("free-text")
    drop = _drop(root / "landing")
    out, vault, validated = root / "submission", root / "vault", root / "validated"
    deid = cli("deid", str(drop), str(out), "--site", SITE, "--vault", str(vault), "--workers", "1")
    assert deid.returncode == 0, deid.stdout + deid.stderr
    validate = cli("validate", str(out), "--out", str(validated))
    assert validate.returncode == 1, validate.stdout + validate.stderr  # patient 3's rows are quarantined
    db = root / "warehouse.duckdb"
    load = cli("load", str(validated), "--db", str(db))
    assert load.returncode in (0, 1), load.stdout + load.stderr
    terminal = "\n".join(p.stdout + p.stderr for p in (deid, validate, load))
    return {
        "drop": drop,
        "submission": out,
        "vault": vault,
        "validated": validated,
        "db": db,
        "terminal": terminal,
    }


LITERALS = [NAME, "Quuxworth", PHONE, "02079460958", "0207946"]


def test_the_submission_holds_no_typed_identifier(through_the_hub) -> None:
    leaks = find_leaks(through_the_hub["submission"], LITERALS, through_the_hub["terminal"])
    assert leaks == []
    with (through_the_hub["submission"] / "clinical.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["primary_tumour"] for r in rows] == ["lung", "other", "other"]
    assert {rows[2][c] for c in ("sex", "bmi", "diagnosis", "pathology_confirmed")} == {INVALID}
    facts = json.loads((through_the_hub["submission"] / "submission.json").read_text())["tables"]
    assert facts["site_findings"]["cells"]["clinical.csv"]["primary_tumour"] == {"other": 2}


def test_nothing_the_hub_writes_repeats_a_typed_value(through_the_hub) -> None:
    validated = through_the_hub["validated"]
    assert find_leaks(validated, LITERALS) == []
    for name in ("quarantine.csv", "warnings.csv", "summary.json", "data_docs/index.html"):
        assert (validated / name).is_file(), name
    quarantine = pd.read_csv(validated / "quarantine.csv", dtype=str, keep_default_na=False)
    assert set(quarantine["source_row"]) >= {"3"} and INVALID in set(quarantine["value"])
    for parquet in (validated / "accepted").glob("*.parquet"):  # compressed pages: read the cells
        cells = [str(c) for c in pd.read_parquet(parquet).to_numpy().ravel()]
        assert not [c for c in cells if "QZ" in c or NAME in c or "0207946" in c], parquet.name
    accepted = pd.read_parquet(validated / "accepted" / "clinical.parquet")
    assert list(accepted["primary_tumour"]) == ["lung", "other"]  # the example's row loads, as "other"


def test_no_warehouse_text_repeats_a_typed_value(through_the_hub) -> None:
    con = duckdb.connect(str(through_the_hub["db"]), read_only=True)
    try:
        columns = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'VARCHAR' AND table_schema NOT IN ('information_schema', 'pg_catalog')"
        ).fetchall()
        hits = []
        for schema, table, column in columns:
            query = f'SELECT count(*) FROM "{schema}"."{table}" WHERE "{column}" LIKE ? OR "{column}" LIKE ?'
            (n,) = con.execute(query, ["%QZ%", f"%{NAME}%"]).fetchone() or (0,)
            if n:
                hits.append(f"{schema}.{table}.{column}: {n}")
        assert hits == []
        assert columns, "the warehouse has no text columns to scan"
    finally:
        con.close()


def test_negative_control_the_scan_finds_the_tokens_where_they_are(through_the_hub) -> None:
    assert any(EXAMPLE[:4] in h or "QZ00102K" in h for h in find_leaks(through_the_hub["drop"], LITERALS))
    vault_hits = find_leaks(through_the_hub["vault"], LITERALS)
    assert any("tables/" in h and "QZ00203K" in h for h in vault_hits), vault_hits[:5]  # sex
    assert any(f"tables/{NIGHT}.csv: {PHONE}" in h for h in vault_hits)
