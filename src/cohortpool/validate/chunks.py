"""Validate a table larger than a chunk with memory bounded by the chunk (issue 16 item 2).

A table is read up to three times, each time chunk by chunk (:func:`cohortpool.validate.frames.read_chunks`):

1. the suite runs on every chunk (:meth:`cohortpool.validate.run.SuiteRunner.run_chunks`); the columns
   the cross-table checks read go to their DuckDB table (:func:`cohortpool.validate.crosstable.keep_rows`);
2. only if some rows have findings: those rows are gathered (text, and ``source_row``), indexed by their
   positions, for :func:`cohortpool.validate.quarantine.judge` (duplicates, report lines);
3. the accepted rows go to the parquet file (:class:`cohortpool.validate.accepted.AcceptedWriter`);
   where no row is quarantined, step 1 already wrote every row to that file, and the table is not read
   a third time.

The result is the one the whole-table path gives: the same findings, report lines, counts, Data Docs
and accepted rows (``tests/unit/test_validate_chunks.py`` compares both on planted defects). Reading the
file again costs time (a night of 10^6 reads: 27 s against 21 s); holding the whole table cost about
1.1 KB per row (10^6 reads: 1.3 GB peak against 565 MB; ``benchmarks/RESULTS.md``, "Table memory").

Only the SQL engine runs in chunks; a table whose suite needs GX for an expectation (non-ASCII text in a
checked column, an expectation without a translation), or that Arrow's reader does not read exactly as
the whole-table reader, is validated whole.
"""

from __future__ import annotations

import shutil
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
    #: every row, typed, as the accepted file holds rows (written in step 1)
    every_row: Path


def validate_in_chunks(
    runner: SuiteRunner,
    submission_dir: Path,
    suite: TableSuite,
    site_id: str,
    chunk_bytes: int,
    connection: duckdb.DuckDBPyConnection,
    scratch: Path,
    batch_id: str,
) -> ChunkedTable | None:
    """Run ``suite`` over the table chunk by chunk (step 1); None where the table is validated whole
    (it fits in one chunk, or see the module docstring).

    ``connection``: the DuckDB database of the uniqueness keys and of the cross-table columns. Every row
    is also written, typed, to a parquet file in ``scratch`` as the accepted file would hold it: on a
    night where no row is quarantined (the usual one) that file is the accepted file, and step 3 does
    not read the table again (10^6 reads: 4 s).
    """
    path = submission_dir / f"{suite.table}.csv"
    if not path.is_file() or path.stat().st_size <= chunk_bytes:
        return None
    sha256 = sha256_file(path)
    every_row = scratch / f"{suite.table}.every_row.parquet"
    lineage = {"batch_id": batch_id, "source_file": path.name, "source_sha256": sha256}
    writer = AcceptedWriter(suite, lineage, every_row)
    rows = 0

    def chunks() -> Iterator[TableFrames]:
        nonlocal rows
        for chunk in read_chunks(submission_dir, suite, chunk_bytes):
            keep_rows(connection, suite.table, chunk.typed, chunk.offset)
            writer.append(chunk.typed[suite.columns])
            rows = chunk.offset + len(chunk.text)
            yield chunk
            release_arrow_memory()

    try:
        run = runner.run_chunks(suite, chunks(), site_id, connection)
    except NotStreamable:
        run = None
    finally:
        writer.close()
    if run is None:
        every_row.unlink(missing_ok=True)
        return None
    return ChunkedTable(suite, submission_dir, chunk_bytes, path.name, sha256, rows, run, every_row)


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
    if verdict.rejected is None and not verdict.bad:
        shutil.move(table.every_row, accepted_path)  # every row accepted: step 1 wrote the file
        accepted = table.rows_in
    else:
        table.every_row.unlink(missing_ok=True)
        accepted = _write_accepted(
            table, verdict.bad if verdict.rejected is None else None, lineage, accepted_path
        )
    if accepted + len(verdict.bad) != table.rows_in:
        raise AssertionError(f"{table.file}: rows in != accepted + quarantined (a bug; please report)")
    return verdict.split(pd.DataFrame(columns=table.suite.columns), table.rows_in)


def _write_accepted(
    table: ChunkedTable, bad: list[int] | None, lineage: dict[str, str], accepted_path: Path
) -> int:
    """Step 3: the rows not in ``bad`` (none if ``bad`` is None: the table is rejected) to the file."""
    quarantined = np.array(bad or [], dtype=np.int64)
    with AcceptedWriter(table.suite, lineage, accepted_path) as writer:
        if bad is not None:
            for chunk in _chunks(table):
                end = chunk.offset + len(chunk.text)
                at = np.searchsorted(quarantined, [chunk.offset, end])
                local = quarantined[at[0] : at[1]] - chunk.offset
                writer.append(chunk.typed.drop(index=local.tolist())[table.suite.columns])
                release_arrow_memory()
        return writer.rows
