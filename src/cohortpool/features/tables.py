"""Pseudonymise the site's tables with the same keys as the images, column by column as the contract
declares (:mod:`cohortpool.contract.tables`).

MRN -> the images' ``patient_id``; accession number -> the images' ``accession_id`` (so reads link to
studies through the manifest); birth date -> completed years at first exam; the first exam date shifted
by the patient's keyed offset; ``primary_tumour`` -> a term of the consortium's controlled vocabulary;
codes and measurements kept when they are valid, else released as ``<invalid>``; names, addresses,
phones, readers and read dates dropped. Generalisations (``Settings.tables``) coarsen the age, the
first-exam date and rare vocabulary terms. Patients listed in ``withdrawn.csv`` are released only in
the submission's ``withdrawn.csv``: none of their rows leave.

Every other input row gives one output row in the same order with its ``source_row`` (the site's data
row); a row whose cells cannot be matched to the header's columns (an unquoted comma or line break)
releases its identifiers and no value, and is reported as such. A date is ``YYYY-MM-DD`` only, and one
the patient's shift would move out of the calendar is reported as an invalid date (never an
``OverflowError`` that loses the night). Rows stream from the site's file to a hidden partial file
renamed into place, so a table of millions of rows needs memory for one row, and a failure leaves no
half table (nor an older one) in the submission. What was not released as sent is reported in the site's terms
(:mod:`cohortpool.features.table_report`), originals in the vault only.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from cohortpool.config import TablesConfig
from cohortpool.contract.csvio import TOO_MANY, CsvError, CsvRow, CsvTable, write_csv
from cohortpool.contract.tables import CLINICAL, INVALID, READS, WITHDRAWN, Handling, SiteColumn, SiteTable
from cohortpool.features._dates import parse_iso, shift_date
from cohortpool.features.table_report import (
    INVALID_CODE,
    MAPPED,
    NO_ID,
    NOT_DERIVED,
    OTHER,
    UNSHIFTABLE,
    TableReport,
    date_class,
)
from cohortpool.features.vocabulary import EMPTY, SYNONYM, Vocabulary, load_vocabulary
from cohortpool.features.vocabulary import OTHER as TO_OTHER


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


class WithdrawalError(CsvError):
    """``withdrawn.csv`` cannot be read: whose consent was revoked is unknown, so nothing of the night
    may be released (the caller withholds the submission)."""


_QUARANTINED = "the hub quarantines the row"


@dataclass
class TableResult:
    """What pseudonymising one night's tables produced."""

    #: rows written per table (``clinical_rows``, ``reads_rows``, ``withdrawn_patients``)
    counts: dict[str, int] = field(default_factory=dict)
    report: TableReport = field(default_factory=lambda: TableReport(None, ""))
    #: pseudonyms of the withdrawn patients (their DICOM must not leave either)
    withdrawn: frozenset[str] = frozenset()
    vocabulary: Vocabulary | None = None
    options: TablesConfig = field(default_factory=TablesConfig)
    #: why clinical.csv / reads.csv were refused (the message names the file, line or column); None: fine
    error: str | None = None

    def submission_facts(self) -> dict[str, Any]:
        """``submission.json``'s ``tables``: the vocabulary released and the site's findings (counts)."""
        facts: dict[str, Any] = {"site_findings": self.report.counts()}
        if self.vocabulary is not None:
            facts["vocabularies"] = {
                "primary_tumour": {"terms": list(self.vocabulary.terms), "other": self.vocabulary.other}
            }
        return facts


def generalisations(options: TablesConfig) -> dict[str, Any]:
    """The generalisations applied to the released tables, as ``submission.json`` records them."""
    return {
        "age_band_years": options.age_band_years,
        "age_top_code": options.age_top_code,
        "first_exam_date_precision": options.first_exam_date_precision,
        "merge_rare_categories_below": options.merge_rare_categories_below,
        "merged_columns": ["primary_tumour"] if options.merge_rare_categories_below else [],
    }


def _released_age(birth: dt.date, exam: dt.date, options: TablesConfig) -> str:
    age = exam.year - birth.year - ((exam.month, exam.day) < (birth.month, birth.day))
    if options.age_top_code is not None:
        age = min(age, options.age_top_code)
    band = options.age_band_years
    return str(age - age % band)


def _released_date(shifted: dt.date, precision: str) -> str:
    if precision == "month":
        shifted = shifted.replace(day=1)
    elif precision == "year":
        shifted = shifted.replace(month=1, day=1)
    return shifted.isoformat()


class _Pass:
    """One table's pass: the site's rows in, the released records out, findings to the report."""

    def __init__(self, table: SiteTable, keys: Keys, report: TableReport, withdrawn: frozenset[str]) -> None:
        self.table, self.keys, self.report, self.withdrawn = table, keys, report, withdrawn
        kept = [c for c in table.columns if c.handling is Handling.KEEP]
        self.coded = [(c, frozenset(c.values)) for c in kept if c.values]
        self.numbers = [c for c in kept if c.numeric]
        # a patient's rows, and a study's reads, are usually close together: one HMAC for them (bounded)
        self.patient = lru_cache(maxsize=4096)(keys.patient_id)
        self.accession = lru_cache(maxsize=4096)(keys.accession_id)

    def note(self, number: int, line: int, column: str, kind: str, original: str | None, **how: Any) -> None:
        self.report.add(self.table.file, number, line, column, kind, original=original, **how)

    def kept(self, number: int, line: int, row: CsvRow, record: dict[str, Any]) -> None:
        """Copy the KEEP columns: valid values as sent (trimmed), others as :data:`INVALID`."""
        for column, allowed in self.coded:
            value = row[column.name]
            if value in allowed:
                record[column.name] = value
            else:
                record[column.name] = self._checked(number, line, column, value)
        for column in self.numbers:
            record[column.name] = self._checked(number, line, column, row[column.name])

    def _checked(self, number: int, line: int, column: SiteColumn, value: str | None) -> str:
        text = (value or "").strip()
        if not text or column.admits(text):
            return text  # empty stays empty: the suites judge whether it was required
        self.note(
            number,
            line,
            column.name,
            INVALID_CODE,
            value,
            released=INVALID,
            outcome=f"released as {INVALID}, {_QUARANTINED}",
            fix=f"write {column.name} as {column.expected}",
        )
        return INVALID

    def unmatched(self, number: int, row: CsvRow, width: int, record: dict[str, Any]) -> dict[str, Any]:
        """A row whose cells cannot be matched to the columns (an unquoted comma or line break, cells
        left out): reported as such, its identifiers released as their columns say (so the hub can
        quarantine the row), every other column :data:`INVALID` (kept) or empty, never a value."""
        self.report.add_row(
            self.table.file, number, row.line, row.shape, found=len(row.cells), expected=width
        )
        for column in self.table.columns:
            if column.handling is Handling.KEEP:
                record[column.name] = INVALID
        for name in self.table.released:
            record.setdefault(name, "")
        return record

    def withdrawn_cell(self, row: CsvRow) -> bool:
        """Whether any cell of an unmatched row is a withdrawn patient's MRN (which cell holds the MRN
        cannot be told: no row of theirs may leave)."""
        return any(self.patient(c.strip()) in self.withdrawn for c in row.cells if c.strip())

    def identifier(self, number: int, line: int, column: str, released: str) -> None:
        self.note(
            number,
            line,
            column,
            NO_ID,
            "",
            released="",
            outcome=f"{released} left empty, {_QUARANTINED}",
            fix=f"fill in {column} (the same value the images carry)",
        )


def _read(
    path: Path, table: SiteTable, report: TableReport | None = None
) -> Iterator[tuple[int, CsvRow, int]]:
    """``(source_row, row, header width)`` of a site table, streamed; what the reader noticed about the
    header (names read ignoring case, empty unnamed columns) goes to ``report``."""
    with CsvTable(path, table.required, table.export_columns) as reader:
        for number, row in enumerate(reader, start=1):
            yield number, row, reader.width
        if report is not None:
            for text in reader.notes:
                report.note(table.file, text)


def _write(dst: Path, columns: tuple[str, ...], rows: Iterable[Mapping[str, Any]]) -> int:
    """Stream ``rows`` into a hidden partial file and rename it into place; on any failure neither the
    partial file nor an older ``dst`` is left (the table is refused whole)."""
    partial = dst.with_name(f".{dst.name}.partial")
    try:
        count = write_csv(partial, columns, rows)
        partial.replace(dst)
    except BaseException:
        partial.unlink(missing_ok=True)
        dst.unlink(missing_ok=True)
        raise
    return count


def read_withdrawn(src: Path, keys: Keys, report: TableReport) -> list[str]:
    """The pseudonyms of ``withdrawn.csv``'s patients, in file order without repeats."""
    seen: dict[str, None] = {}
    step = _Pass(WITHDRAWN, keys, report, frozenset())
    for number, row, width in _read(src, WITHDRAWN, report):
        line = row.line
        if row.shape == TOO_MANY or row["mrn"] is None:
            # which cell is the MRN cannot be told, and withdrawing the wrong patient cannot be undone
            raise CsvError(
                f"{src}: line {line} has {len(row.cells)} cells where the header has {width}; write one "
                "patient's MRN per line (quote a cell that holds a comma)"
            )
        mrn = (row["mrn"] or "").strip()
        if not mrn:
            step.note(
                number,
                line,
                "mrn",
                NO_ID,
                "",
                released="",
                outcome="row ignored: no patient is withdrawn by it",
                fix="fill in the MRN of the patient who withdrew, or delete the row",
            )
            continue
        seen.setdefault(step.patient(mrn))
    return list(seen)


def _clinical(
    src: Path,
    keys: Keys,
    report: TableReport,
    withdrawn: frozenset[str],
    vocabulary: Vocabulary,
    options: TablesConfig,
) -> Iterator[dict[str, Any]]:
    # the rare terms need a first pass over the file; inside the generator, so a failure of either pass
    # is a failure of writing the table (nothing left of it)
    rare = _rare_terms(src, keys, withdrawn, vocabulary, options.merge_rare_categories_below)
    step = _Pass(CLINICAL, keys, report, withdrawn)
    for number, row, width in _read(src, CLINICAL, report):
        line = row.line
        mrn = (row["mrn"] or "").strip()
        patient = step.patient(mrn) if mrn else ""
        if patient in withdrawn or (row.shape and step.withdrawn_cell(row)):
            report.withdrawn_rows[CLINICAL.file] += 1
            continue
        record: dict[str, Any] = {"site_id": keys.site_id, "patient_id": patient, "source_row": number}
        if row.shape:
            yield step.unmatched(number, row, width, record)
            continue
        if not mrn:
            step.identifier(number, line, "mrn", "patient_id")
        step.kept(number, line, row, record)
        record["primary_tumour"] = _tumour(step, number, line, row["primary_tumour"], vocabulary, rare)
        _dates(step, number, line, row, record, mrn, options)
        yield record


def _tumour(
    step: _Pass, number: int, line: int, value: str | None, vocabulary: Vocabulary, rare: frozenset[str]
) -> str:
    term, how = vocabulary.release(value)
    if how == SYNONYM:
        step.note(
            number,
            line,
            "primary_tumour",
            MAPPED,
            value,
            released=term,
            outcome=f"released as {term}",
            fix="none needed (a reviewed synonym)",
        )
    elif how == TO_OTHER:
        step.note(
            number,
            line,
            "primary_tumour",
            OTHER,
            value,
            released=term,
            outcome=f"not in the vocabulary: released as {term}",
            fix=f"write one of {', '.join(vocabulary.terms)} (or ask for a reviewed synonym)",
        )
    if term in rare:
        step.report.merged_rare["primary_tumour"] += 1
        return vocabulary.other
    return term if how != EMPTY else ""


def _dates(
    step: _Pass,
    number: int,
    line: int,
    row: CsvRow,
    record: dict[str, Any],
    mrn: str,
    options: TablesConfig,
) -> None:
    """age_years from birth_date at the first exam; first_exam_date shifted; problems in the site's terms.

    A first exam date the patient's shift would move out of the calendar (year 1 shifted back) is an
    invalid date like any other: released empty, reported by its class, the night goes on."""
    birth_text, exam_text = row["birth_date"] or "", row["first_exam_date"] or ""
    birth, exam = parse_iso(birth_text), parse_iso(exam_text)
    record["age_years"] = record["first_exam_date"] = ""
    shifted = shift_date(exam, step.keys.shift_days(mrn)) if exam is not None and mrn else None
    if exam is not None and mrn and shifted is None:
        exam, kind = None, UNSHIFTABLE
    else:
        kind = date_class(exam_text)
    if exam is None:
        step.note(
            number,
            line,
            "first_exam_date",
            NOT_DERIVED,
            exam_text,
            value_kind=kind,
            released="",
            outcome=f"first_exam_date and age_years left empty, {_QUARANTINED}",
            fix="write the first exam date as YYYY-MM-DD",
        )
    elif shifted is not None:
        record["first_exam_date"] = _released_date(shifted, options.first_exam_date_precision)
    if birth is None:
        step.note(
            number,
            line,
            "birth_date",
            NOT_DERIVED,
            birth_text,
            value_kind=date_class(birth_text),
            released="",
            outcome=f"age_years left empty, {_QUARANTINED}",
            fix="write the birth date as YYYY-MM-DD",
        )
    elif exam is not None and exam < birth:
        step.note(
            number,
            line,
            "birth_date",
            NOT_DERIVED,
            birth_text,
            value_kind="a date after first_exam_date",
            released="",
            outcome=f"age_years cannot be derived and is left empty, {_QUARANTINED}",
            fix="correct birth_date or first_exam_date (the birth date is after the first exam)",
        )
    elif exam is not None:
        record["age_years"] = _released_age(birth, exam, options)


def _reads(src: Path, keys: Keys, report: TableReport, withdrawn: frozenset[str]) -> Iterator[dict[str, Any]]:
    step = _Pass(READS, keys, report, withdrawn)
    for number, row, width in _read(src, READS, report):
        line = row.line
        mrn = (row["mrn"] or "").strip()
        patient = step.patient(mrn) if mrn else ""
        if patient in withdrawn or (row.shape and step.withdrawn_cell(row)):
            report.withdrawn_rows[READS.file] += 1
            continue
        accession = (row["accession_number"] or "").strip()
        record: dict[str, Any] = {
            "site_id": keys.site_id,
            "patient_id": patient,
            "accession_id": step.accession(accession) if accession else "",
            "source_row": number,
        }
        if row.shape:
            yield step.unmatched(number, row, width, record)
            continue
        if not mrn:
            step.identifier(number, line, "mrn", "patient_id")
        if not accession:
            step.identifier(number, line, "accession_number", "accession_id")
        step.kept(number, line, row, record)
        yield record


def _rare_terms(
    src: Path, keys: Keys, withdrawn: frozenset[str], vocabulary: Vocabulary, below: int
) -> frozenset[str]:
    """Vocabulary terms fewer than ``below`` released patients hold (a first pass over the file)."""
    if below <= 0:
        return frozenset()
    counts: Counter[str] = Counter()
    step = _Pass(CLINICAL, keys, TableReport(None, ""), withdrawn)
    for _, row, _ in _read(src, CLINICAL):
        mrn = (row["mrn"] or "").strip()
        if row.shape or (mrn and step.patient(mrn) in withdrawn):
            continue  # an unmatched row releases no term
        counts[vocabulary.release(row["primary_tumour"])[0]] += 1
    return frozenset(t for t, n in counts.items() if t and t != vocabulary.other and n < below)


def pseudonymise_tables(
    in_dir: Path,
    out_dir: Path,
    keys: Keys,
    *,
    options: TablesConfig | None = None,
    vault_dir: Path | None = None,
    night: str = "",
) -> TableResult:
    """Pseudonymise ``in_dir``'s ``withdrawn.csv`` (when present), ``clinical.csv`` and ``reads.csv``
    (when either is present, both are required) into ``out_dir``.

    Parameters
    ----------
    options
        The vocabulary and generalisations (``Settings.tables``; the defaults when None).
    vault_dir, night
        Where the findings with their original values go (``VAULT/tables/<night>.csv``); None keeps
        only the counts (library use without a vault).

    Returns
    -------
    TableResult
        Rows written per table, the findings report, the withdrawn patients' pseudonyms, and
        ``error`` when ``clinical.csv`` or ``reads.csv`` is missing, lacks a contract column, repeats
        a column or cannot be read (nothing is left in ``out_dir`` for that table; the other table is
        still written).

    Raises
    ------
    WithdrawalError
        ``withdrawn.csv`` cannot be read (nothing of the tables is written).
    VocabularyError
        The configured synonyms file cannot be used.
    """
    options = options or TablesConfig()
    vocabulary = load_vocabulary(options)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = TableResult(vocabulary=vocabulary, options=options)
    with TableReport(vault_dir, night) as report:
        result.report = report
        if (in_dir / WITHDRAWN.file).exists():
            try:
                ids = read_withdrawn(in_dir / WITHDRAWN.file, keys, report)
            except CsvError as exc:
                (out_dir / WITHDRAWN.file).unlink(missing_ok=True)
                raise WithdrawalError(
                    f"{exc}; until it is fixed nothing of this night is released (whose consent was "
                    "revoked cannot be told)"
                ) from None
            rows = ({"site_id": keys.site_id, "patient_id": p} for p in ids)
            result.counts["withdrawn_patients"] = _write(out_dir / WITHDRAWN.file, WITHDRAWN.released, rows)
            result.withdrawn = frozenset(ids)
        if (in_dir / CLINICAL.file).exists() or (in_dir / READS.file).exists():
            gone, errors = result.withdrawn, []
            try:  # each table on its own: one refused table does not hold back the other
                records = _clinical(in_dir / CLINICAL.file, keys, report, gone, vocabulary, options)
                result.counts["clinical_rows"] = _write(out_dir / CLINICAL.file, CLINICAL.released, records)
            except CsvError as exc:
                errors.append(str(exc))
            try:
                reads = _reads(in_dir / READS.file, keys, report, gone)
                result.counts["reads_rows"] = _write(out_dir / READS.file, READS.released, reads)
            except CsvError as exc:
                errors.append(str(exc))
            result.error = "; ".join(errors) or None
    return result
