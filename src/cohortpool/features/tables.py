"""Pseudonymise the site's ``clinical.csv`` and ``reads.csv`` with the same keys as the images.

MRN -> the images' ``patient_id``; accession number -> the images' ``accession_id`` (so reads link
to studies through the manifest); birth date -> completed years at first exam; the first exam date
shifted by the patient's keyed offset; names, addresses, phones, readers and read dates dropped.
Every input row gives one output row in the same order with its ``source_row``; values the site
sent are passed through unjudged (validation at the hub judges them), except dates, which are
never passed through unshifted: a date that does not parse becomes empty.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Protocol

from cohortpool.contract import FINDINGS
from cohortpool.features._dates import age_years, shift_iso

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CLINICAL_IN = (
    "mrn",
    "birth_date",
    "sex",
    "height_cm",
    "weight_kg",
    "bmi",
    "dxa_t_score",
    "diagnosis",
    "pathology_confirmed",
    "primary_tumour",
    "first_exam_date",
)
CLINICAL_OUT = (
    "site_id",
    "patient_id",
    "age_years",
    "sex",
    "height_cm",
    "weight_kg",
    "bmi",
    "dxa_t_score",
    "diagnosis",
    "pathology_confirmed",
    "primary_tumour",
    "first_exam_date",
    "source_row",
)
READS_IN = ("mrn", "accession_number", "modality", "level", *FINDINGS, "genant_grade", "height_loss_pct")
READS_OUT = (
    "site_id",
    "patient_id",
    "accession_id",
    "modality",
    "level",
    *FINDINGS,
    "genant_grade",
    "height_loss_pct",
    "source_row",
)


class Keys(Protocol):
    """The keyed pseudonyms the tables need (:class:`cohortpool.deid.Pseudonymiser` has them)."""

    @property
    def site_id(self) -> str: ...

    def patient_id(self, mrn: str) -> str: ...
    def accession_id(self, accession: str) -> str: ...
    def shift_days(self, mrn: str) -> int: ...


class TableError(ValueError):
    """A site table cannot be pseudonymised (missing file or columns); the message says which."""


def _read(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise TableError(f"{path}: missing; the site drop must contain it (docs/data_contract.md section 1)")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:  # e.g. GBK/GB18030 or Latin-1 exports: never guess an encoding
        line = data[: exc.start].count(b"\n") + 1
        raise TableError(f"{path}: line {line} is not UTF-8; re-export the table as UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            header = ",".join(reader.fieldnames or [])
            hint = " (the header has no commas: separate columns with ',')" if "," not in header else ""
            raise TableError(
                f"{path}: missing column(s) {', '.join(missing)}{hint}; see docs/data_contract.md section 1"
            )
        return list(reader)
    except csv.Error as exc:  # a cell past the csv module's field limit (128 KiB), a NUL byte, ...
        # line_num counts the lines read before the failing one
        raise TableError(f"{path}: line {reader.line_num + 1} cannot be read as CSV: {exc}") from None


def formula_safe(value: object) -> object:
    """Text a spreadsheet would run as a formula (= + - @, tab, CR first; not a number) gets a leading '.

    Submissions are opened in Excel at the hub (OWASP "CSV injection"); the report's exports do the same.
    """
    if isinstance(value, str) and value[:1] in _FORMULA_START:
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


def _write(path: Path, columns: tuple[str, ...], rows: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: formula_safe(v) for k, v in row.items()} for row in rows)


def _age(birth: str, exam: str) -> str:
    age = age_years(birth, exam)
    return "" if age is None else str(age)


def pseudonymise_clinical(src: Path, dst: Path, keys: Keys) -> int:
    """``clinical.csv`` -> contract section 2; returns the number of rows."""
    out: list[dict[str, object]] = []
    for number, row in enumerate(_read(src, CLINICAL_IN), start=1):
        mrn = (row["mrn"] or "").strip()
        record: dict[str, object] = {c: row[c] for c in CLINICAL_OUT if c in row}
        record["site_id"] = keys.site_id
        record["patient_id"] = keys.patient_id(mrn) if mrn else ""
        record["age_years"] = _age(row["birth_date"] or "", row["first_exam_date"] or "")
        exam = (row["first_exam_date"] or "").strip()
        record["first_exam_date"] = (shift_iso(exam, keys.shift_days(mrn)) or "") if mrn and exam else ""
        record["source_row"] = number
        out.append(record)
    _write(dst, CLINICAL_OUT, out)
    return len(out)


def pseudonymise_reads(src: Path, dst: Path, keys: Keys) -> int:
    """``reads.csv`` -> contract section 2; returns the number of rows."""
    out: list[dict[str, object]] = []
    for number, row in enumerate(_read(src, READS_IN), start=1):
        mrn = (row["mrn"] or "").strip()
        accession = (row["accession_number"] or "").strip()
        record: dict[str, object] = {c: row[c] for c in READS_OUT if c in row}
        record["site_id"] = keys.site_id
        record["patient_id"] = keys.patient_id(mrn) if mrn else ""
        record["accession_id"] = keys.accession_id(accession) if accession else ""
        record["source_row"] = number
        out.append(record)
    _write(dst, READS_OUT, out)
    return len(out)


def pseudonymise_tables(in_dir: Path, out_dir: Path, keys: Keys) -> dict[str, int]:
    """Pseudonymise ``in_dir/clinical.csv`` and ``in_dir/reads.csv`` into ``out_dir``.

    Returns
    -------
    dict
        Rows written per table (``clinical_rows``, ``reads_rows``).

    Raises
    ------
    TableError
        A table is missing or lacks a contract column (nothing is written for it).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "clinical_rows": pseudonymise_clinical(in_dir / "clinical.csv", out_dir / "clinical.csv", keys),
        "reads_rows": pseudonymise_reads(in_dir / "reads.csv", out_dir / "reads.csv", keys),
    }
