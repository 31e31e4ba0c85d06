"""cohortpool.warehouse.sql: files by name, values bound, identifiers only from the allow-list."""

from __future__ import annotations

import duckdb
import pytest

from cohortpool.warehouse import migrate, sql


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    migrate(connection)
    return connection


def test_load_sql_reads_a_file_by_name() -> None:
    assert "INSERT INTO raw.clinical" in sql.load_sql("load/insert_clinical")


@pytest.mark.parametrize(
    "name", ["../pyproject", "load/../../x", "Load/Insert", "load/insert_clinical.sql", ""]
)
def test_load_sql_refuses_names_outside_sql(name: str) -> None:
    with pytest.raises(sql.SqlError, match="bad SQL file name"):
        sql.load_sql(name)


def test_missing_file_is_named() -> None:
    with pytest.raises(sql.SqlError, match="no_such_file"):
        sql.load_sql("analysis/no_such_file")


def test_values_are_bound_not_pasted(con: duckdb.DuckDBPyConnection) -> None:
    hostile = "x'; DROP TABLE raw.batches; --"
    assert sql.query_rows(con, "load/select_batch", batch_id=hostile) == []
    # the table the injected text tried to drop is still there
    assert con.execute("SELECT count(*) FROM raw.batches").fetchall() == [(0,)]


def test_missing_parameter_is_an_error_naming_file_and_parameter(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(sql.SqlError, match=r"select_batch\.sql needs parameter\(s\) \['\$batch_id'\]"):
        sql.run_sql(con, "load/select_batch")


def test_unused_parameter_is_an_error(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(sql.SqlError, match=r"has no parameter\(s\) \['\$batchid'\]"):
        sql.run_sql(con, "load/select_batch", batch_id="a", batchid="typo")


def test_identifier_outside_allow_list_is_refused(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(sql.SqlError, match=r"not in cohortpool\.warehouse\.sql\.ALLOWED_IDENTIFIERS"):
        sql.render("analysis/checksum_view", {"view": 'analysis.patients"; DROP TABLE raw.sites; --'})


def test_identifier_slots_must_all_be_filled() -> None:
    with pytest.raises(sql.SqlError, match=r"needs identifier\(s\) \['view'\]"):
        sql.render("analysis/checksum_view")


def test_allowed_identifier_is_quoted_per_part() -> None:
    assert sql.quote_identifier("analysis.patients") == '"analysis"."patients"'


def test_query_df_returns_the_last_statement(con: duckdb.DuckDBPyConnection) -> None:
    frame = sql.query_df(con, "load/select_value_sets")
    assert list(frame.columns) == ["table_name", "column_name", "allowed"]
    assert set(frame["table_name"]) == {"clinical", "reads", "imaging_manifest"}


def test_list_sql_lists_migrations_in_order() -> None:
    names = sql.list_sql("schema")
    assert names == sorted(names)
    assert names[0] == "schema/0001_schemas"
