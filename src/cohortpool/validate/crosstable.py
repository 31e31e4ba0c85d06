"""Checks that need two tables of the same submission (referential integrity, completeness per patient).

Why not GX: GX 1.x has no row-level cross-table expectation (the only one,
``expect_table_row_count_to_equal_other_table``, compares counts). Why DuckDB: the columns these checks
read (:data:`COLUMNS`) are kept, for every row of every table, in a DuckDB database, which a table read in
chunks fills chunk by chunk and which spills to disk beyond its memory limit: a table of 10^7 reads is
checked without holding its columns in Python (issue 16 item 2). The SQL lives here, beside the rule it
states, like the SQL :mod:`cohortpool.validate.sqlgen` generates from the suites (the ``sql/`` files are the
warehouse's, read through ``cohortpool.warehouse.sql``, which the validation stage must not import).

Each check compares against the submitted table as a whole, not only its accepted rows, so that one bad
row is reported once, where it is, instead of cascading into its related rows. The warehouse views join
patients and reads, so an accepted read of a quarantined patient does not reach an analysis.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from cohortpool.validate.findings import ERROR, WARNING, Finding, RowFindings, expand
from cohortpool.validate.scratch import append_rows

#: the typed columns the checks read (a table validated in chunks keeps only these for them)
COLUMNS = ("patient_id", "modality")

#: a read's modality (the reads table's code) -> the DICOM modalities of a matching study
READ_TO_DICOM_MODALITY: dict[str, tuple[str, ...]] = {"XR": ("DX", "CR"), "CT": ("CT",), "MR": ("MR",)}


def relation(table: str) -> str:
    """The DuckDB table holding ``table``'s position, patient_id and modality."""
    return f"cohortpool_cross_{table}"


def _not_in(table: str, other: str) -> str:
    """Rows of ``table`` whose patient_id is missing or not among the present patient_ids of ``other``
    (pandas' ``~isin(other.dropna())``: a missing value is never present)."""
    return (
        f"SELECT t.p FROM {relation(table)} t ANTI JOIN "
        f"(SELECT DISTINCT patient_id FROM {relation(other)} WHERE patient_id IS NOT NULL) o "
        "ON t.patient_id = o.patient_id"
    )


def _read_has_study() -> str:
    """Reads with no study of a matching DICOM modality for their patient (a missing patient_id matches a
    manifest row whose patient_id is missing too; a read modality outside the mapping, or missing, never
    matches)."""
    pairs = ", ".join(
        f"('{read}', '{dicom}')" for read, dicoms in READ_TO_DICOM_MODALITY.items() for dicom in dicoms
    )
    return (
        f"WITH mapping(read_modality, dicom) AS (VALUES {pairs}), "
        "studies AS (SELECT DISTINCT m.patient_id, mapping.read_modality "
        f"FROM {relation('imaging_manifest')} m JOIN mapping ON m.modality = mapping.dicom) "
        f"SELECT r.p FROM {relation('reads')} r ANTI JOIN studies s "
        "ON r.patient_id IS NOT DISTINCT FROM s.patient_id AND r.modality = s.read_modality"
    )


@dataclass(frozen=True)
class CrossCheck:
    """One cross-table rule: the table whose rows it judges, its severity, its reason, and the query
    giving the positions of the rows that fail it."""

    name: str
    table: str
    needs: tuple[str, ...]
    severity: str
    reason: str
    columns: tuple[str, ...]
    failing: str


CHECKS: tuple[CrossCheck, ...] = (
    CrossCheck(
        "crosstable:read_patient_in_clinical",
        "reads",
        ("reads", "clinical"),
        ERROR,
        "the read's patient_id is not in clinical.csv",
        ("patient_id",),
        _not_in("reads", "clinical"),
    ),
    CrossCheck(
        "crosstable:read_has_matching_study",
        "reads",
        ("reads", "imaging_manifest"),
        ERROR,
        "no study of the read's modality for this patient in imaging_manifest.csv (XR needs DX or CR)",
        ("patient_id", "modality"),
        _read_has_study(),
    ),
    CrossCheck(
        "crosstable:patient_has_imaging",
        "clinical",
        ("clinical", "imaging_manifest"),
        ERROR,
        "the patient has no series in imaging_manifest.csv",
        ("patient_id",),
        _not_in("clinical", "imaging_manifest"),
    ),
    CrossCheck(
        "crosstable:patient_has_fractured_vertebra_read",
        "clinical",
        ("clinical", "reads"),
        ERROR,
        "the patient has no fractured-vertebra read in reads.csv",
        ("patient_id",),
        _not_in("clinical", "reads"),
    ),
    CrossCheck(
        "crosstable:series_patient_in_clinical",
        "imaging_manifest",
        ("imaging_manifest", "clinical"),
        WARNING,
        "the series' patient_id is not in clinical.csv",
        ("patient_id",),
        _not_in("imaging_manifest", "clinical"),
    ),
)


def keep_rows(connection: duckdb.DuckDBPyConnection, table: str, frame: pd.DataFrame, offset: int) -> None:
    """Add the rows of ``frame`` (typed; rows ``offset`` on of ``table``) to the table's relation; the
    first rows (``offset`` 0) start it afresh."""
    arrays = [pa.array(np.arange(offset, offset + len(frame), dtype=np.int64))]
    for column in COLUMNS:
        if column in frame.columns:
            arrays.append(pa.array(frame[column], type=pa.string(), from_pandas=True))
        else:
            arrays.append(pa.nulls(len(frame), type=pa.string()))
    rows = pa.Table.from_arrays(arrays, names=["p", *COLUMNS])
    append_rows(connection, relation(table), rows, replace=offset == 0)


def check_tables(connection: duckdb.DuckDBPyConnection, present: Collection[str]) -> list[RowFindings]:
    """Findings of every cross-table check whose tables are all in ``present`` (each kept in
    ``connection`` by :func:`keep_rows`).

    A check whose other table was rejected is skipped: its rows cannot be judged against a table the hub
    does not have, and the rejection is already reported.
    """
    findings: list[RowFindings] = []
    cursor = connection.cursor()
    try:
        for check in CHECKS:
            if not all(name in present for name in check.needs):
                continue
            failing = cursor.execute(f"{check.failing} ORDER BY 1").fetchnumpy()["p"]
            rows = np.asarray(failing, dtype=np.int64)
            if len(rows):
                findings.append(
                    RowFindings(
                        check.table, check.name, check.severity, check.reason, check.columns, None, rows
                    )
                )
    finally:
        cursor.close()
    return findings


def forget_rows(connection: duckdb.DuckDBPyConnection, tables: Collection[str]) -> None:
    """Drop what :func:`keep_rows` kept, once :func:`check_tables` has run: the scratch database's memory
    is then free for splitting the tables (issue 16 item 2)."""
    cursor = connection.cursor()
    try:
        for table in tables:
            cursor.execute(f"DROP TABLE IF EXISTS {relation(table)}")
    finally:
        cursor.close()


def check_crosstable(tables: Mapping[str, pd.DataFrame]) -> list[Finding]:
    """:func:`check_tables` on whole typed frames, by table (positions: their rows, 0 to n - 1)."""
    connection = duckdb.connect(":memory:", config={"threads": 1})
    try:
        for table, frame in tables.items():
            keep_rows(connection, table, frame.reset_index(drop=True), 0)
        return expand(check_tables(connection, tables))
    finally:
        connection.close()
