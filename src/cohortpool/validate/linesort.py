"""Report lines too many to hold, sorted by DuckDB and written part by part (issue 16 item 2).

A table read in chunks is judged chunk by chunk (:func:`cohortpool.validate.chunks.split_in_chunks`):
each chunk's report lines go to a table of the scratch database (which spills to disk beyond its memory
limit), each with its finding's place among the table's findings, and are written to ``quarantine.csv``
or ``warnings.csv`` in the order the whole-table path sorts them (:data:`quarantine.LINE_ORDER`, stable:
ties keep the findings' order). A night that quarantines every row of 10^6 thus holds a chunk's lines,
not a million.
"""

from __future__ import annotations

from itertools import count

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from cohortpool.validate.quarantine import LINE_ORDER, QUARANTINE_COLUMNS, LinesFile

#: lines fetched and written at a time
WRITE_ROWS = 65_536
_NAMES = count()


class SortedLines:
    """One table's lines of one file, collected in any order, written sorted."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self._connection = connection
        self._name = f"cohortpool_lines_{next(_NAMES)}"
        self._order = "__cohortpool_order"
        columns = ", ".join(
            f'"{c}" {"BIGINT" if c == "source_row" else "VARCHAR"}' for c in QUARANTINE_COLUMNS
        )
        connection.execute(f'CREATE OR REPLACE TABLE "{self._name}" ({columns}, "{self._order}" BIGINT)')
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
        part = pa.Table.from_arrays(arrays, names=[*QUARANTINE_COLUMNS, self._order])
        cursor = self._connection.cursor()
        try:
            view = f"{self._name}_part"
            cursor.register(view, part)
            cursor.execute(f'INSERT INTO "{self._name}" SELECT * FROM "{view}"')
            cursor.unregister(view)
        finally:
            cursor.close()
        self.rows += len(lines)

    def write(self, out: LinesFile) -> None:
        """Append the lines to ``out``, sorted, and let the table go.

        DuckDB compares text by its UTF-8 bytes, which orders as Python (pandas) orders ``str``: by code
        point; nulls (lines about no row) come first, as ``na_position="first"`` puts them.
        """
        cursor = self._connection.cursor()
        try:
            if self.rows:
                keys = ", ".join(f'"{c}" ASC NULLS FIRST' for c in [*LINE_ORDER, self._order])
                selected = ", ".join(f'"{c}"' for c in QUARANTINE_COLUMNS)
                reader: pa.RecordBatchReader = cursor.sql(
                    f'SELECT {selected} FROM "{self._name}" ORDER BY {keys}'
                ).to_arrow_reader(WRITE_ROWS)
                for batch in reader:
                    out.append(batch.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get))
            cursor.execute(f'DROP TABLE IF EXISTS "{self._name}"')
        finally:
            cursor.close()
