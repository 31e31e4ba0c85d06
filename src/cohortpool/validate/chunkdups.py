"""Possible duplicates of a table read in chunks, resolved in DuckDB (issue 16 item 2).

The rule is :func:`cohortpool.validate.quarantine.resolve_duplicates`' (the whole-table path): copies of
a key that agree on every contract column but ``source_row`` keep the first and quarantine the others as
its duplicates; copies that disagree are all quarantined. Here the copies are not gathered in memory (a
night can repeat every key): as each chunk is read, every flagged row leaves its key, an exact encoding
of its values, its report line's key and value and its source row in a table of the scratch database,
which spills to disk beyond its memory limit; once the table is read, one query groups them and the lines
are written part by part (:mod:`cohortpool.validate.linesort`).
``tests/unit/test_validate_chunks.py`` requires the same lines as the whole-table path, byte for byte.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import count

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from cohortpool.validate.findings import RowFindings
from cohortpool.validate.frames import TEXT_DTYPE, TableFrames
from cohortpool.validate.linesort import LineSink
from cohortpool.validate.quarantine import (
    LISTED_COPIES,
    QUARANTINE_COLUMNS,
    conflict_reason,
    duplicate_reason,
    line_frame,
)
from cohortpool.validate.scratch import append_rows
from cohortpool.validate.suites import TableSuite

#: rows of resolved lines fetched at a time
RESOLVE_ROWS = 65_536
_NAMES = count()


def encode(frame: pd.DataFrame) -> pd.Series:
    """Each row's values as one string that two rows share exactly when their values are equal (a
    missing value equal only to a missing value): each cell is ``n``, or ``v``, its length, ``:`` and
    itself, so no two different rows can concatenate alike."""
    encoded = pd.Series("", index=frame.index, dtype=TEXT_DTYPE)
    for column in frame.columns:
        cell = frame[column].astype(TEXT_DTYPE)
        present = cell.notna()
        filled = cell.fillna("")
        lengths = filled.str.len().astype("int64").astype(TEXT_DTYPE)
        encoded = encoded + ("v" + lengths + ":" + filled).where(present, "n")
    return encoded


class ChunkDuplicates:
    """The flagged rows of a table's uniqueness checks, added chunk by chunk, resolved once."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        suite: TableSuite,
        groups: list[RowFindings],
        after: int,
    ) -> None:
        """``groups``: the flagged findings of each check, in the findings' order; ``after``: the place
        of the first resolved line among the table's findings (duplicates are resolved last)."""
        self._connection = connection
        self._suite = suite
        self._groups = groups
        self._after = after
        # the whole-table path groups copies by the check's label, keyed on its first check's columns
        self._label_order: dict[str, int] = {}
        self._key_columns: dict[str, tuple[str, ...]] = {}
        for group in groups:
            self._label_order.setdefault(group.expectation, len(self._label_order))
            self._key_columns.setdefault(group.expectation, group.columns)
        self._name = f"cohortpool_duplicates_{next(_NAMES)}"
        connection.execute(
            f'CREATE OR REPLACE TABLE "{self._name}" (g INTEGER, label INTEGER, p BIGINT, src BIGINT, '
            "copy_key VARCHAR, copy_values VARCHAR, line_key VARCHAR, line_value VARCHAR)"
        )

    def add(self, frames: TableFrames, start: int, end: int) -> None:
        """The flagged rows among rows ``start`` to ``end`` - 1 (``frames``: those rows, indexed by
        position)."""
        compared = [c for c in frames.text.columns if c != "source_row"]
        for number, group in enumerate(self._groups):
            lo, hi = np.searchsorted(group.positions, [start, end])
            if lo == hi:
                continue
            rows = group.positions[lo:hi]
            lines = line_frame(list(replace(group, positions=rows)), frames, self._suite)
            text = frames.text.loc[rows]
            part = pa.table(
                {
                    "g": pa.array(np.full(len(rows), number, dtype=np.int32)),
                    "label": pa.array(
                        np.full(len(rows), self._label_order[group.expectation], dtype=np.int32)
                    ),
                    "p": pa.array(rows),
                    "src": pa.array(lines["source_row"].to_numpy(dtype=np.int64)),
                    "copy_key": pa.array(
                        encode(text[list(self._key_columns[group.expectation])]).to_numpy(),
                        type=pa.string(),
                    ),
                    "copy_values": pa.array(encode(text[compared]).to_numpy(), type=pa.string()),
                    "line_key": pa.array(lines["key"].to_numpy(dtype=object), type=pa.string()),
                    "line_value": pa.array(lines["value"].to_numpy(dtype=object), type=pa.string()),
                }
            )
            append_rows(self._connection, f'"{self._name}"', part)

    def resolve(self, lines: dict[str, LineSink], flagged: dict[str, np.ndarray]) -> None:
        """Add the resolved report lines to ``lines`` and mark their rows in ``flagged`` (by severity:
        a boolean per row of the table). The table of flagged rows is dropped."""
        name = f'"{self._name}"'
        query = f"""
            WITH copies AS (
                SELECT label, copy_key, count(*) AS n, count(DISTINCT copy_values) AS variants,
                    min(p) AS first_p
                FROM {name} GROUP BY label, copy_key
            ),
            listed AS (
                SELECT label, copy_key, string_agg(src::VARCHAR, ', ' ORDER BY p) AS listing,
                    arg_min(src, p) AS first_src
                FROM (
                    SELECT label, copy_key, src, p,
                        row_number() OVER (PARTITION BY label, copy_key ORDER BY p) AS copy_number
                    FROM {name}
                )
                WHERE copy_number <= {LISTED_COPIES}
                GROUP BY label, copy_key
            )
            SELECT d.g, d.p, d.src, d.line_key, d.line_value, c.n, c.variants, l.listing, l.first_src
            FROM {name} d JOIN copies c USING (label, copy_key) JOIN listed l USING (label, copy_key)
            WHERE c.variants > 1 OR d.p <> c.first_p
            ORDER BY d.label, c.first_p, d.p
        """
        cursor = self._connection.cursor()
        place = self._after
        try:
            reader: pa.RecordBatchReader = cursor.sql(query).to_arrow_reader(RESOLVE_ROWS)
            for batch in reader:
                part = batch.to_pandas()
                reasons = [
                    self._reason(int(g), int(n), int(variants), listing, int(first))
                    for g, n, variants, listing, first in zip(
                        part["g"],
                        part["n"],
                        part["variants"],
                        part["listing"],
                        part["first_src"],
                        strict=True,
                    )
                ]
                groups = part["g"].to_numpy()
                severities = np.array([self._groups[g].severity for g in groups.tolist()], dtype=object)
                frame = pd.DataFrame(
                    {
                        "table": self._suite.table,
                        "source_row": pd.array(part["src"].to_numpy(), dtype="Int64"),
                        "key": part["line_key"].to_numpy(dtype=object),
                        "expectation": [self._groups[g].expectation for g in groups.tolist()],
                        "severity": severities,
                        "reason": reasons,
                        "value": part["line_value"].to_numpy(dtype=object),
                    },
                    columns=QUARANTINE_COLUMNS,
                )
                places = np.arange(place, place + len(frame), dtype=np.int64)
                place += len(frame)
                positions = part["p"].to_numpy(dtype=np.int64)
                for severity, sorted_lines in lines.items():
                    mine = severities == severity
                    if mine.any():
                        sorted_lines.add(frame[mine], places[mine])
                        flagged[severity][positions[mine]] = True
            cursor.execute(f"DROP TABLE IF EXISTS {name}")
        finally:
            cursor.close()

    def _reason(self, group: int, copies: int, variants: int, listing: str, first: int) -> str:
        reason = self._groups[group].reason
        if variants == 1:
            return duplicate_reason(reason, first)
        return conflict_reason(reason, listing, copies)
