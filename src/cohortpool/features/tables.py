"""Pseudonymise the site's ``clinical.csv`` and ``reads.csv`` with the same keys as the images.

MRN -> the images' ``patient_id``; accession number -> the images' ``accession_id`` (so reads link
to studies through the manifest); birth date -> completed years at first exam; the first exam date
shifted by the patient's keyed offset; names, addresses, phones, readers and read dates dropped.
Every input row gives one output row in the same order with its ``source_row``; values the site
sent are passed through unjudged (validation at the hub judges them), except dates, which are
never passed through unshifted: a date that does not parse becomes empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from cohortpool.contract.csvio import CsvError, CsvTable, write_csv
from cohortpool.contract.tables import CLINICAL, READS, SiteTable
from cohortpool.features._dates import age_years, shift_iso


class Keys(Protocol):
    """The keyed pseudonyms the tables need (:class:`cohortpool.deid.Pseudonymiser` has them)."""

    @property
    def site_id(self) -> str: ...

    def patient_id(self, mrn: str) -> str: ...
    def accession_id(self, accession: str) -> str: ...
    def shift_days(self, mrn: str) -> int: ...


#: a site table cannot be pseudonymised (missing file or columns, not UTF-8, a repeated header): the
#: contract's CSV error, whose message names the file and what to do
TableError = CsvError


def _rows(path: Path, table: SiteTable) -> list[tuple[int, dict[str | None, Any]]]:
    with CsvTable(path, table.required) as reader:
        return list(reader)


def _age(birth: str, exam: str) -> str:
    age = age_years(birth, exam)
    return "" if age is None else str(age)


def pseudonymise_clinical(src: Path, dst: Path, keys: Keys) -> int:
    """``clinical.csv`` -> contract section 2; returns the number of rows."""
    out: list[dict[str, object]] = []
    for number, (_, row) in enumerate(_rows(src, CLINICAL), start=1):
        mrn = (row["mrn"] or "").strip()
        record: dict[str, object] = {c: row[c] for c in CLINICAL.released if c in row}
        record["site_id"] = keys.site_id
        record["patient_id"] = keys.patient_id(mrn) if mrn else ""
        record["age_years"] = _age(row["birth_date"] or "", row["first_exam_date"] or "")
        exam = (row["first_exam_date"] or "").strip()
        record["first_exam_date"] = (shift_iso(exam, keys.shift_days(mrn)) or "") if mrn and exam else ""
        record["source_row"] = number
        out.append(record)
    write_csv(dst, CLINICAL.released, out)
    return len(out)


def pseudonymise_reads(src: Path, dst: Path, keys: Keys) -> int:
    """``reads.csv`` -> contract section 2; returns the number of rows."""
    out: list[dict[str, object]] = []
    for number, (_, row) in enumerate(_rows(src, READS), start=1):
        mrn = (row["mrn"] or "").strip()
        accession = (row["accession_number"] or "").strip()
        record: dict[str, object] = {c: row[c] for c in READS.released if c in row}
        record["site_id"] = keys.site_id
        record["patient_id"] = keys.patient_id(mrn) if mrn else ""
        record["accession_id"] = keys.accession_id(accession) if accession else ""
        record["source_row"] = number
        out.append(record)
    write_csv(dst, READS.released, out)
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
