"""Validate a table larger than a chunk with memory bounded by the chunk (issue 16 item 2).

A table is read up to three times, each time chunk by chunk (:func:`cohortpool.validate.frames.read_chunks`):

1. the suite runs on every chunk (:meth:`cohortpool.validate.run.SuiteRunner.run_chunks`); the columns
   the cross-table checks read go to their DuckDB table (:func:`cohortpool.validate.crosstable.keep_rows`);
   a check's failing rows are kept as positions (:class:`cohortpool.validate.findings.RowFindings`);
2. only if some rows have findings: each chunk's report lines are built from its rows and sorted on disk
   with the others' (:mod:`cohortpool.validate.linesort`); the rows flagged as possible duplicates go to
   the scratch database, where their copies are compared (:mod:`cohortpool.validate.chunkdups`);
3. the accepted rows go to the parquet file (:class:`cohortpool.validate.accepted.AcceptedWriter`);
   where no row is quarantined, step 1 already wrote every row to that file, and the table is not read
   a third time.

The result is the one the whole-table path gives: the same findings, report lines, counts, Data Docs
and accepted rows (``tests/unit/test_validate_chunks.py`` compares both on planted defects). Holding the
whole table cost about 1.1 KB per row (10^6 reads: 1.3 GB peak), and a night that quarantined every
row 1.6 GB; read in chunks, both stay under 500 MB at 10^6 and 10^7 rows (``benchmarks/RESULTS.md``,
"Table memory"). What still grows with the rows: 8 bytes per finding (its position), and a count per
distinct failing value of a table whose values may be published.

Only the SQL engine runs in chunks; a table whose suite needs GX for an expectation (one without an exact
translation: none of the reviewed suites has one), or that Arrow's reader does not read exactly as the
whole-table reader, is validated whole.
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
from cohortpool.validate.chunkdups import ChunkDuplicates
from cohortpool.validate.crosstable import keep_rows
from cohortpool.validate.findings import ERROR, WARNING, Finding, Found, RowFindings
from cohortpool.validate.frames import (
    TEXT_DTYPE,
    NotStreamable,
    TableFrames,
    read_chunks,
    release_arrow_memory,
)
from cohortpool.validate.linesort import InOrderLines, LineSink, SortedLines
from cohortpool.validate.quarantine import (
    KEEP_FIRST_IF_IDENTICAL,
    QUARANTINE_COLUMNS,
    TABLE_REJECTED,
    LinesFile,
    TableSplit,
    line_frame,
    rejection,
    reported_rows,
)
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
    #: whether the rows' reported numbers rise with their place in the file (report lines can then be
    #: written chunk by chunk, :class:`cohortpool.validate.linesort.InOrderLines`)
    rows_in_order: bool


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
    in_order = True
    last = 0

    def chunks() -> Iterator[TableFrames]:
        nonlocal rows, in_order, last
        for chunk in read_chunks(submission_dir, suite, chunk_bytes):
            keep_rows(connection, suite.table, chunk.typed, chunk.offset)
            writer.append(chunk.typed[suite.columns])
            rows = chunk.offset + len(chunk.text)
            if in_order and rows > chunk.offset:
                numbers = reported_rows(chunk.typed["source_row"], np.arange(chunk.offset, rows))
                in_order = bool(numbers[0] > last and np.all(np.diff(numbers) > 0))
                last = int(numbers[-1])
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
    return ChunkedTable(suite, submission_dir, chunk_bytes, path.name, sha256, rows, run, every_row, in_order)


def _chunks(table: ChunkedTable) -> Iterator[TableFrames]:
    try:
        yield from read_chunks(table.submission_dir, table.suite, table.chunk_bytes)
    except NotStreamable as exc:  # it was read in chunks a moment ago: the file changed under the hub
        raise RuntimeError(f"{table.file}: could not be read again ({exc}); was it changed?") from exc


def _no_rows(table: ChunkedTable) -> TableFrames:
    """The table's frames without a row (a line about the whole table reads none)."""
    suite = table.suite
    text = pd.DataFrame({c: pd.Series(dtype=TEXT_DTYPE) for c in suite.columns})
    typed = pd.DataFrame({"source_row": pd.Series(dtype="Int64")})
    return TableFrames(suite.table, table.file, table.sha256, text, typed, rows_total=table.rows_in)


@dataclass
class _Rows:
    """A check's findings on rows, ascending, and the place of the first among the table's findings
    (report lines of one row and check keep the findings' order)."""

    template: Finding
    positions: np.ndarray
    first: int

    def within(self, start: int, end: int) -> tuple[list[Finding], np.ndarray, np.ndarray]:
        """The findings on rows ``start`` to ``end`` - 1, their places and their rows."""
        lo, hi = np.searchsorted(self.positions, [start, end])
        t = self.template
        rows = self.positions[lo:hi]
        findings = [
            Finding(t.table, p, t.expectation, t.severity, t.reason, t.columns, t.duplicates, t.value)
            for p in rows.tolist()
        ]
        return findings, np.arange(self.first + lo, self.first + hi, dtype=np.int64), rows


def _on_rows(found: list[Found]) -> tuple[list[_Rows], list[Finding], list[RowFindings]]:
    """The findings on rows not flagged as possible duplicates (with their places), the findings on
    the table, and the possible duplicates (whose places follow every other finding's: the whole-table
    path resolves them last, :func:`cohortpool.validate.quarantine.resolve_duplicates`)."""
    rows: list[_Rows] = []
    on_table: list[Finding] = []
    duplicates: list[RowFindings] = []
    place = 0
    for item in found:
        if isinstance(item, Finding) and item.position is None:
            on_table.append(item)
            rows.append(_Rows(item, np.empty(0, dtype=np.int64), place))  # its place, for its line
            place += 1
            continue
        if isinstance(item, Finding):
            t = item
            item = RowFindings(
                t.table, t.expectation, t.severity, t.reason, t.columns, t.duplicates, np.array([t.position])
            )
        if len(item.positions) > 1 and bool(np.any(np.diff(item.positions) < 0)):
            raise AssertionError(f"{item.expectation}: row positions out of order (a bug; please report)")
        if item.duplicates == KEEP_FIRST_IF_IDENTICAL:
            duplicates.append(item)
            continue
        template = Finding(item.table, None, item.expectation, item.severity, item.reason, item.columns)
        rows.append(_Rows(template, item.positions, place))
        place += len(item.positions)
    return rows, on_table, duplicates


def split_in_chunks(
    table: ChunkedTable,
    found: list[Found],
    lineage: dict[str, str],
    accepted_path: Path,
    connection: duckdb.DuckDBPyConnection,
    lines: dict[str, LinesFile],
) -> TableSplit:
    """Report lines and counts of the table; its accepted rows written to ``accepted_path`` (steps 2, 3).

    The lines are judged chunk by chunk and appended to ``lines`` (by severity: the quarantine and
    warning files) in the whole-table path's order (:mod:`cohortpool.validate.linesort`); possible
    duplicates are compared in ``connection`` (:mod:`cohortpool.validate.chunkdups`). The returned
    split's frames are empty: the rows and lines are in their files.
    """
    suite = table.suite
    rejected = rejection(found)
    if rejected:
        # every row is quarantined, each with one line naming why (as the whole-table path does)
        everything = Finding(suite.table, None, TABLE_REJECTED, ERROR, rejected)
        rows = [_Rows(everything, np.arange(table.rows_in, dtype=np.int64), 0)]
        on_table: list[Finding] = []
        duplicates: list[RowFindings] = []
    else:
        rows, on_table, duplicates = _on_rows(found)
    sinks: dict[str, LineSink] = {
        severity: InOrderLines(out)
        if table.rows_in_order and not duplicates  # possible duplicates are resolved after every chunk
        else SortedLines(connection, out)
        for severity, out in lines.items()
    }
    flagged = _judge(table, rows, on_table, duplicates, sinks, connection)
    bad = flagged[ERROR]
    quarantined = int(bad.sum())
    warned = int((flagged[WARNING] & ~bad).sum())
    for sink in sinks.values():
        sink.close()
    if not rejected and not quarantined:
        shutil.move(table.every_row, accepted_path)  # every row accepted: step 1 wrote the file
        accepted = table.rows_in
    else:
        table.every_row.unlink(missing_ok=True)
        accepted = _write_accepted(table, None if rejected else bad, lineage, accepted_path)
    if accepted + quarantined != table.rows_in:
        raise AssertionError(f"{table.file}: rows in != accepted + quarantined (a bug; please report)")
    empty = pd.DataFrame(columns=QUARANTINE_COLUMNS)
    return TableSplit(
        accepted=pd.DataFrame(columns=suite.columns),
        quarantine=empty,
        warnings=empty,
        rows_in=table.rows_in,
        quarantined=quarantined,
        warned=warned,
        rejected=rejected or None,
    )


def _judge(
    table: ChunkedTable,
    rows: list[_Rows],
    on_table: list[Finding],
    duplicates: list[RowFindings],
    sinks: dict[str, LineSink],
    connection: duckdb.DuckDBPyConnection,
) -> dict[str, np.ndarray]:
    """Step 2: every finding's report line to the sink of its severity, chunk by chunk; which rows have
    a line, by severity, as a byte per row (10^7 rows all quarantined: 10 MB, where their positions,
    gathered and made unique, took 300 MB)."""
    suite = table.suite
    flagged = {severity: np.zeros(table.rows_in, dtype=bool) for severity in sinks}
    for finding in on_table:  # a table-level warning: one line about no row
        place = next(r.first for r in rows if r.template is finding)
        sinks[finding.severity].add(
            line_frame([finding], _no_rows(table), suite), np.array([place], dtype=np.int64)
        )
    after = sum(len(r.positions) for r in rows) + len(on_table)
    copies = ChunkDuplicates(connection, suite, duplicates, after) if duplicates else None
    if after > len(on_table) or copies is not None:
        for chunk in _chunks(table):
            end = chunk.offset + len(chunk.text)
            frames = TableFrames(
                suite.table,
                table.file,
                table.sha256,
                chunk.text.set_axis(pd.RangeIndex(chunk.offset, end)),
                chunk.typed.set_axis(pd.RangeIndex(chunk.offset, end)),
            )
            if copies is not None:
                copies.add(frames, chunk.offset, end)
            for severity, sink in sinks.items():
                picked = [r.within(chunk.offset, end) for r in rows if r.template.severity == severity]
                findings = [f for found_here, _, _ in picked for f in found_here]
                if findings:
                    sink.add(line_frame(findings, frames, suite), np.concatenate([p for _, p, _ in picked]))
                    for _, _, positions in picked:
                        flagged[severity][positions] = True
            release_arrow_memory()
    if copies is not None:
        copies.resolve(sinks, flagged)
    return flagged


def _write_accepted(
    table: ChunkedTable, bad: np.ndarray | None, lineage: dict[str, str], accepted_path: Path
) -> int:
    """Step 3: the rows not marked in ``bad`` (none if ``bad`` is None: the table is rejected) to the
    file."""
    with AcceptedWriter(table.suite, lineage, accepted_path) as writer:
        if bad is not None:
            for chunk in _chunks(table):
                end = chunk.offset + len(chunk.text)
                kept = ~bad[chunk.offset : end]
                writer.append(chunk.typed[kept][table.suite.columns])
                release_arrow_memory()
        return writer.rows
