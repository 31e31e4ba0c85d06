"""Rows into the validation's scratch DuckDB database (uniqueness keys, cross-table columns, report
lines, possible duplicates), from Arrow, without a copy through pandas."""

from __future__ import annotations

from itertools import count

import duckdb
import pyarrow as pa

_VIEWS = count()


def append_rows(
    connection: duckdb.DuckDBPyConnection, table: str, rows: pa.Table, *, replace: bool = False
) -> None:
    """Add ``rows`` to ``table`` (an SQL name, quoted as needed); ``replace``: the table starts afresh
    from them (created if missing)."""
    view = f"cohortpool_rows_{next(_VIEWS)}"
    cursor = connection.cursor()
    try:
        cursor.register(view, rows)
        if replace:
            cursor.execute(f'CREATE OR REPLACE TABLE {table} AS SELECT * FROM "{view}"')
        else:
            cursor.execute(f'INSERT INTO {table} SELECT * FROM "{view}"')
        cursor.unregister(view)
    finally:
        cursor.close()
