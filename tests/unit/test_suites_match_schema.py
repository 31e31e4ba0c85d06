"""The GX suites and the warehouse schema say the same thing about every submission column.

Applies the real migrations (``cohortpool.warehouse.migrate``) to a temporary DuckDB file and compares each
suite's columns, types and value sets with ``information_schema.columns`` and ``duckdb_constraints()``.
Lineage and history columns are the warehouse's own and are left out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import duckdb
import pytest

from cohortpool.validate.suites import TABLES, load_suite

LINEAGE_AND_HISTORY = {
    "batch_id",
    "source_file",
    "source_sha256",
    "loaded_at",
    "valid_from_seq",
    "valid_to_seq",
    "superseded_by_batch",
}
_IN_LIST = re.compile(r"^\(*\"?(\w+)\"?\s+IN\s+\(([^()]*)\)\)*$", re.IGNORECASE)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    migrate_module = pytest.importorskip(
        "cohortpool.warehouse.migrate", reason="cohortpool.warehouse.migrate is not there yet"
    )
    path: Path = tmp_path_factory.mktemp("schema") / "schema.duckdb"
    con = duckdb.connect(str(path))
    migrate_module.migrate(con)
    yield con
    con.close()


def _schema_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'raw' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return {name: dtype for name, dtype in rows if name not in LINEAGE_AND_HISTORY}


def _schema_value_sets(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, list[object]]:
    rows = con.execute(
        "SELECT expression FROM duckdb_constraints() "
        "WHERE schema_name = 'raw' AND table_name = ? AND constraint_type = 'CHECK'",
        [table],
    ).fetchall()
    out: dict[str, list[object]] = {}
    for (expression,) in rows:
        match = _IN_LIST.match(expression.strip())
        assert match, f"raw.{table}: CHECK {expression!r} is not a value set; extend this test"
        out[match.group(1)] = list(ast.literal_eval(f"[{match.group(2)}]"))
    return out


def _schema_not_null(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() "
        "WHERE schema_name = 'raw' AND table_name = ? AND constraint_type = 'NOT NULL'",
        [table],
    ).fetchall()
    return {name for (names,) in rows for name in names} - LINEAGE_AND_HISTORY


@pytest.mark.parametrize("table", TABLES)
def test_every_suite_column_has_the_schema_type(warehouse: duckdb.DuckDBPyConnection, table: str) -> None:
    suite = load_suite(table)
    assert _schema_columns(warehouse, table) == suite.sql_types()


@pytest.mark.parametrize("table", TABLES)
def test_suite_value_sets_equal_schema_check_constraints(
    warehouse: duckdb.DuckDBPyConnection, table: str
) -> None:
    suite = load_suite(table)
    schema_sets = _schema_value_sets(warehouse, table)
    suite_sets = suite.value_sets()
    assert sorted(schema_sets) == sorted(suite_sets)
    for column, values in schema_sets.items():
        assert sorted(map(str, values)) == sorted(map(str, suite_sets[column])), column
        # same kind of values too: genant_grade is INTEGER on both sides, not '0'..'3'
        assert {type(v) for v in values} == {type(v) for v in suite_sets[column]}, column


@pytest.mark.parametrize("table", TABLES)
def test_schema_not_null_columns_are_required_by_the_suite(
    warehouse: duckdb.DuckDBPyConnection, table: str
) -> None:
    """A NULL the suite lets through would make the load fail; every NOT NULL needs an error check."""
    suite = load_suite(table)
    required = {
        exp["kwargs"]["column"]
        for exp in suite.expectations
        if exp["type"] == "expect_column_values_to_not_be_null"
        and exp["meta"]["severity"] == "error"
        and "row_condition" not in exp["kwargs"]
    }
    assert _schema_not_null(warehouse, table) <= required
