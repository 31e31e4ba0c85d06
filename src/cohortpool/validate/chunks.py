"""Validate a table larger than a chunk with memory bounded by the chunk (issue 16 item 2).

A table is read three times, each time chunk by chunk (:func:`cohortpool.validate.frames.read_chunks`):

1. the suite runs on every chunk (:meth:`cohortpool.validate.run.SuiteRunner.run_chunks`); the columns
   the cross-table checks read go to their DuckDB table (:func:`cohortpool.validate.crosstable.keep_rows`);
2. only if some rows have findings: those rows are gathered (text, and ``source_row``), indexed by their
   positions, for :func:`cohortpool.validate.quarantine.judge` (duplicates, report lines);
3. the accepted rows go to the parquet file (:class:`cohortpool.validate.accepted.AcceptedWriter`).

The result is the one the whole-table path gives: the same findings, report lines, counts, Data Docs
and accepted rows (``tests/unit/test_validate_chunks.py`` compares both on planted defects). Reading the
file again costs time (a night of 10^6 reads: 27 s against 21 s); holding the whole table cost about
1.1 KB per row (10^6 reads: 1.3 GB peak against 565 MB; ``benchmarks/RESULTS.md``, "Table memory").

Only the SQL engine runs in chunks; a table whose suite needs GX for an expectation (non-ASCII text in a
checked column, an expectation without a translation), or that Arrow's reader does not read exactly as
the whole-table reader, is validated whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from cohortpool.contract.files import sha256_file
from cohortpool.validate.accepted import AcceptedWriter
from cohortpool.validate.crosstable import keep_rows
from cohortpool.validate.findings import Finding
from cohortpool.validate.frames import (
    TEXT_DTYPE,
    NotStreamable,
    TableFrames,
    read_chunks,
    release_arrow_memory,
)
from cohortpool.validate.quarantine import KEEP_FIRST_IF_IDENTICAL, TableSplit, has_table_error, judge
from cohortpool.validate.run import SuiteRunner, TableRun
from cohortpool.validate.suites import TableSuite


@dataclass
class ChunkedTable:
    """A table validated chunk by chunk: its suite's run and what its split needs."""

    suite: TableSuite
    submission_dir: Path
    chunk_bytes: int
    file: str
    sha256: str
    rows_in: int
    run: TableRun


def validate_in_chunks(
    runner: SuiteRunner,
    submission_dir: Path,
    suite: TableSuite,
    site_id: str,
    chunk_bytes: int,
    connection: duckdb.DuckDBPyConnection,
) -> ChunkedTable | None:
    """Run ``suite`` over the table chunk by chunk (step 1); None where the table is validated whole
    (it fits in one chunk, or see the module docstring).

    ``connection``: the DuckDB database of the uniqueness keys and of the cross-table columns.
    """
    path = submission_dir / f"{suite.table}.csv"
    if not path.is_file() or path.stat().st_size <= chunk_bytes:
        return None
    rows = 0

    def chunks() -> Iterator[TableFrames]:
        nonlocal rows
        for chunk in read_chunks(submission_dir, suite, chunk_bytes):
            keep_rows(connection, suite.table, chunk.typed, chunk.offset)
            rows = chunk.offset + len(chunk.text)
            yield chunk
            release_arrow_memory()

    try:
        run = runner.run_chunks(suite, chunks(), site_id, connection)
    except NotStreamable:
        return None
    if run is None:
        return None
    return ChunkedTable(suite, submission_dir, chunk_bytes, path.name, sha256_file(path), rows, run)


def _chunks(table: ChunkedTable) -> Iterator[TableFrames]:
    try:
        yield from read_chunks(table.submission_dir, table.suite, table.chunk_bytes)
    except NotStreamable as exc:  # it was read in chunks a moment ago: the file changed under the hub
        raise RuntimeError(f"{table.file}: could not be read again ({exc}); was it changed?") from exc


def _named_rows(table: ChunkedTable, findings: list[Finding]) -> TableFrames:
    """The rows the findings name (every row for a table-level error), indexed by position (step 2).

    A row flagged as a possible duplicate keeps every column (its copies are compared on all of them);
    any other row keeps only the key and the columns its findings report, the other cells left empty:
    a night that quarantines every row holds a few columns of each, not the table.
    """
    suite = table.suite
    every_row = has_table_error(findings)
    duplicates = {f.position for f in findings if f.duplicates == KEEP_FIRST_IF_IDENTICAL}
    full = np.array(sorted(p for p in duplicates if p is not None), dtype=np.int64)
    named = np.array(sorted({f.position for f in findings if f.position is not None}), dtype=np.int64)
    reported = [c for c in suite.columns if c in set(suite.key).union(*(f.columns for f in findings))]
    text_parts: list[pd.DataFrame] = []
    typed_parts: list[pd.DataFrame] = []
    if every_row or len(named):
        for chunk in _chunks(table):
            end = chunk.offset + len(chunk.text)
            if every_row:
                picked = np.arange(chunk.offset, end, dtype=np.int64)
            else:
                picked = named[np.searchsorted(named, chunk.offset) : np.searchsorted(named, end)]
            if not len(picked):
                continue
            whole = np.isin(picked, full)
            for rows, columns in ((picked[whole], suite.columns), (picked[~whole], reported)):
                if len(rows):
                    local = rows - chunk.offset
                    text_parts.append(chunk.text.iloc[local][columns].set_axis(rows))
                    typed_parts.append(chunk.typed[["source_row"]].iloc[local].set_axis(rows))
            release_arrow_memory()
    text = pd.concat(text_parts).sort_index() if text_parts else pd.DataFrame()
    text = text.reindex(columns=suite.columns)
    for column in text.columns:
        if text[column].dtype != TEXT_DTYPE:
            text[column] = text[column].astype(TEXT_DTYPE)
    typed = (
        pd.concat(typed_parts).sort_index()
        if typed_parts
        else pd.DataFrame({"source_row": pd.Series(dtype="Int64")})
    )
    return TableFrames(suite.table, table.file, table.sha256, text, typed, rows_total=table.rows_in)


def split_in_chunks(
    table: ChunkedTable, findings: list[Finding], lineage: dict[str, str], accepted_path: Path
) -> TableSplit:
    """Report lines and counts of the table; its accepted rows written to ``accepted_path`` (steps 2, 3).

    The returned split's ``accepted`` frame is empty: the rows are in the file.
    """
    verdict = judge(_named_rows(table, findings), table.suite, findings)
    bad = np.array(verdict.bad, dtype=np.int64)
    with AcceptedWriter(table.suite, lineage, accepted_path) as writer:
        if verdict.rejected is None:
            for chunk in _chunks(table):
                end = chunk.offset + len(chunk.text)
                local = bad[np.searchsorted(bad, chunk.offset) : np.searchsorted(bad, end)] - chunk.offset
                writer.append(chunk.typed.drop(index=local.tolist())[table.suite.columns])
                release_arrow_memory()
        accepted = writer.rows
    if accepted + len(verdict.bad) != table.rows_in:
        raise AssertionError(f"{table.file}: rows in != accepted + quarantined (a bug; please report)")
    return TableSplit(
        accepted=pd.DataFrame(columns=table.suite.columns).iloc[0:0],
        quarantine=verdict.quarantine,
        warnings=verdict.warnings,
        rows_in=table.rows_in,
        quarantined=len(verdict.bad),
        warned=verdict.warned,
        rejected=verdict.rejected,
    )
