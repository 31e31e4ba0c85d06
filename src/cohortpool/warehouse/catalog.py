"""What the warehouse's own catalogue says about its tables: columns, value sets, bad cells.

The migrations are the one definition of the tables; Python asks DuckDB instead of keeping a copy.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from cohortpool.warehouse import sql
from cohortpool.warehouse.batch import TABLES
from cohortpool.warehouse.migrate import migrate


def table_columns(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str, ...]]:
    """The submission columns of each raw table (no lineage or history), in table order."""
    return {
        table: tuple(row[0] for row in sql.query_rows(con, "load/select_table_columns", table_name=table))
        for table in TABLES
    }


def value_sets(con: duckdb.DuckDBPyConnection | None = None) -> dict[str, dict[str, list[str]]]:
    """``{table: {column: allowed values as text}}`` from the ``CHECK (col IN (...))`` constraints.

    Without a connection, an in-memory warehouse is migrated to read them (so the validation suites
    can be compared with ``sql/schema/`` without a warehouse file).
    """
    if con is None:
        with duckdb.connect() as memory:
            migrate(memory)
            return value_sets(memory)
    found: dict[str, dict[str, list[str]]] = {}
    for table, column, allowed in sql.query_rows(con, "load/select_value_sets"):
        found.setdefault(table, {})[column] = list(allowed)
    return found


def describe_bad_cells(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> str:
    """A sentence naming the first rows and columns of ``path`` the raw table refuses."""
    rows = sql.query_rows(con, "load/select_bad_cells", path=str(path), table_name=table)
    if not rows:
        return "no single cell explains the failure"
    return "; ".join(f"source_row {src} column {col} {why}" for src, col, why in rows)
