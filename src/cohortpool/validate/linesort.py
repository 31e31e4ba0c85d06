"""Report lines too many to hold, written part by part in the whole-table path's order (issue 16 item 2).

A table read in chunks is judged chunk by chunk (:func:`cohortpool.validate.chunks.split_in_chunks`),
each line with its finding's place among the table's findings; the lines must reach ``quarantine.csv``
or ``warnings.csv`` in the order the whole-table path sorts them (:data:`quarantine.LINE_ORDER`, stable:
ties keep the findings' order). Two ways, so that a night that quarantines every row of 10^7 holds a
chunk's lines, not ten million:

- :class:`InOrderLines`, where the rows' reported numbers rise with their place in the file (the usual
  table: ``source_row`` numbers the rows) and no line is added out of turn: each chunk's lines are
  sorted and written as they come;
- :class:`SortedLines` otherwise: the lines go to a table of the scratch database and are sorted there
  once the table is judged (DuckDB spills to disk beyond its memory limit).
"""

from __future__ import annotations

from itertools import count
from typing import Protocol

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from cohortpool.validate.quarantine import LINE_ORDER, QUARANTINE_COLUMNS, LinesFile
from cohortpool.validate.scratch import append_rows

#: lines fetched and written at a time
WRITE_ROWS = 65_536
#: DuckDB's memory limit while it sorts a table's lines
SORT_MEMORY = "128MB"
_NAMES = count()


class LineSink(Protocol):
    """Where a table's lines of one file go: added with their findings' places, written by ``close``."""

    def add(self, lines: pd.DataFrame, order: np.ndarray) -> None: ...

    def close(self) -> None: ...


#: the place of each line among the table's findings (the last sort key)
_PLACE = "__cohortpool_place"


class InOrderLines:
    """One table's lines of one file, added chunk by chunk in source-row order, written as they come.

    Lines about the whole table (no row) are added before any chunk's, as they sort first."""

    def __init__(self, out: LinesFile) -> None:
        self._out = out

    def add(self, lines: pd.DataFrame, order: np.ndarray) -> None:
        if len(lines):
            placed = lines.assign(**{_PLACE: order})
            ordered = placed.sort_values([*LINE_ORDER, _PLACE], kind="stable", na_position="first")
            self._out.append(ordered[QUARANTINE_COLUMNS])

    def close(self) -> None:
        """Nothing is held back."""


class SortedLines:
    """One table's lines of one file, collected in any order, written sorted when closed."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, out: LinesFile) -> None:
        self._connection = connection
        self._out = out
        self._name = f"cohortpool_lines_{next(_NAMES)}"
        columns = ", ".join(
            f'"{c}" {"BIGINT" if c == "source_row" else "VARCHAR"}' for c in QUARANTINE_COLUMNS
        )
        connection.execute(f'CREATE OR REPLACE TABLE "{self._name}" ({columns}, "{_PLACE}" BIGINT)')
        self.rows = 0

    def add(self, lines: pd.DataFrame, order: np.ndarray) -> None:
        """Lines (:func:`cohortpool.validate.quarantine.line_frame`) with their findings' places."""
        if not len(lines):
            return
        arrays = [
            pa.array(lines[c], type=pa.int64() if c == "source_row" else pa.string(), from_pandas=True)
            for c in QUARANTINE_COLUMNS
        ]
        arrays.append(pa.array(np.asarray(order, dtype=np.int64)))
        part = pa.Table.from_arrays(arrays, names=[*QUARANTINE_COLUMNS, _PLACE])
        append_rows(self._connection, f'"{self._name}"', part)
        self.rows += len(lines)

    def close(self) -> None:
        """Append the lines to the file, sorted, and let the table go.

        DuckDB compares text by its UTF-8 bytes, which orders as Python (pandas) orders ``str``: by code
        point; nulls (lines about no row) come first, as ``na_position="first"`` puts them.
        """
        cursor = self._connection.cursor()
        limit = cursor.execute("SELECT current_setting('memory_limit')").fetchone()
        try:
            if self.rows:
                # the scratch database's 64 MB cannot merge the sorted runs of 10^7 lines ("failed to pin
                # a block"); 128 MB can (measured, in order and shuffled), for the length of the sort
                cursor.execute(f"SET memory_limit = '{SORT_MEMORY}'")
                keys = ", ".join(f'"{c}" ASC NULLS FIRST' for c in [*LINE_ORDER, _PLACE])
                selected = ", ".join(f'"{c}"' for c in QUARANTINE_COLUMNS)
                reader: pa.RecordBatchReader = cursor.sql(
                    f'SELECT {selected} FROM "{self._name}" ORDER BY {keys}'
                ).to_arrow_reader(WRITE_ROWS)
                for batch in reader:
                    self._out.append(batch.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get))
            cursor.execute(f'DROP TABLE IF EXISTS "{self._name}"')
        finally:
            if limit is not None:
                cursor.execute(f"SET memory_limit = '{limit[0]}'")
            cursor.close()
