"""A table's accepted rows as the validated batch's parquet file (data contract section 3).

One schema for both ways a table is validated: whole (:func:`write_accepted`, one call) or in chunks
(:class:`AcceptedWriter`, rows appended chunk by chunk and written in row groups of a fixed size, each
one contiguous array per column, so that the file's bytes do not depend on where the chunks end).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cohortpool.validate.suites import TableSuite

LINEAGE_COLUMNS = ("batch_id", "source_file", "source_sha256")
_ARROW_TYPES = {
    "str": pa.string(),
    "Int64": pa.int32(),
    "float64": pa.float64(),
    "datetime64[us]": pa.date32(),
}
#: rows per row group of a table written in chunks (about 3 MB of reads rows held before a write). 16,384,
#: not 65,536: a row group is held twice while it is written (the chunks, then one contiguous copy), and
#: the larger groups added about 27 MB to the peak of a 10^6-row night (issue 16 item 2)
ROW_GROUP_ROWS = 16_384


def arrow_table(frame: pd.DataFrame, suite: TableSuite, lineage: dict[str, str]) -> pa.Table:
    """The typed contract columns of ``frame`` and the lineage columns, as the warehouse loads them."""
    arrays = []
    names = []
    for col, gx_type in suite.column_types.items():
        if gx_type == "datetime64[us]":
            # dates are read at midnight (frames._cast): the cast to a calendar date drops nothing
            array = pa.array(frame[col], from_pandas=True).cast(pa.date32())
        else:
            array = pa.array(frame[col], type=_ARROW_TYPES[gx_type], from_pandas=True)
        arrays.append(array)
        names.append(col)
    for col in LINEAGE_COLUMNS:
        arrays.append(pa.array([lineage[col]] * len(frame), type=pa.string()))
        names.append(col)
    return pa.Table.from_arrays(arrays, names=names)


def write_accepted(frame: pd.DataFrame, suite: TableSuite, lineage: dict[str, str], path: Path) -> None:
    """Write a whole table's accepted rows to ``path``."""
    pq.write_table(arrow_table(frame, suite, lineage), path)


class AcceptedWriter:
    """Accepted rows appended chunk by chunk; row groups of :data:`ROW_GROUP_ROWS` rows."""

    def __init__(self, suite: TableSuite, lineage: dict[str, str], path: Path) -> None:
        self._suite = suite
        self._lineage = lineage
        empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in suite.column_types.items()})
        self._empty = arrow_table(empty, suite, lineage)
        self._writer = pq.ParquetWriter(path, self._empty.schema)
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self.rows = 0

    def append(self, frame: pd.DataFrame) -> None:
        table = arrow_table(frame, self._suite, self._lineage)
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        while self._pending_rows >= ROW_GROUP_ROWS:
            self._flush(ROW_GROUP_ROWS)

    def _flush(self, rows: int) -> None:
        held = pa.concat_tables(self._pending)
        # one contiguous array per column: Parquet's page boundaries follow the arrays it is given, so
        # written as the chunks left them the file's bytes changed with the chunks' size
        self._writer.write_table(held.slice(0, rows).combine_chunks(), row_group_size=rows)
        rest = held.slice(rows)
        self._pending = [rest] if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def close(self) -> None:
        if self._pending_rows:
            self._flush(self._pending_rows)
        elif self.rows == 0:
            self._writer.write_table(self._empty)
        self._writer.close()

    def __enter__(self) -> AcceptedWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self._writer.close()
