"""Migrations: from empty, from every earlier version, and edited or unknown migrations refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from cohortpool.contract import resources
from cohortpool.warehouse import MigrationError, migrate, sql
from cohortpool.warehouse.catalog import value_sets
from cohortpool.warehouse.migrate import discover


def _catalog(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    # everything a migration can create, in a comparable form (the test reads the catalogue directly)
    return {
        "columns": con.execute(
            "SELECT schema_name, table_name, column_name, data_type, is_nullable, column_index "
            "FROM duckdb_columns() WHERE database_name = current_database() ORDER BY ALL"
        ).fetchall(),
        "constraints": con.execute(
            "SELECT schema_name, table_name, constraint_type, constraint_text FROM duckdb_constraints() "
            "WHERE database_name = current_database() ORDER BY ALL"
        ).fetchall(),
        "views": con.execute(
            "SELECT schema_name, view_name, sql FROM duckdb_views() "
            "WHERE NOT internal AND database_name = current_database() ORDER BY ALL"
        ).fetchall(),
        "macros": con.execute(
            "SELECT schema_name, function_name FROM duckdb_functions() "
            "WHERE function_type IN ('macro', 'table_macro') AND database_name = current_database() "
            "AND schema_name IN ('raw', 'staging', 'analysis') ORDER BY ALL"
        ).fetchall(),
    }


@pytest.fixture
def sql_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of sql/ that a test may edit, in place of the one the package ships."""
    root = tmp_path / "checkout"
    shutil.copytree(resources.sql_dir(), root / "sql")
    monkeypatch.setattr(resources, "sql_dir", lambda: root / "sql")
    return root / "sql"


def test_migrate_from_empty_records_every_file_with_its_checksum(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        applied = migrate(con)
        recorded = con.execute(
            "SELECT version, name, sha256 FROM main.schema_migrations ORDER BY 1"
        ).fetchall()
    expected = discover()
    assert applied == [m.version for m in expected]
    assert recorded == [(m.version, m.name, sql.sql_sha256(m.name)) for m in expected]
    assert len(expected) >= 4


def test_second_migrate_applies_nothing_and_changes_nothing(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        migrate(con)
        before = _catalog(con)
        assert migrate(con) == []
        assert _catalog(con) == before


def test_migrate_from_every_earlier_version_reaches_the_same_schema(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "fresh.duckdb")) as con:
        migrate(con)
        reference = _catalog(con)
    versions = [m.version for m in discover()]
    for start in range(len(versions)):
        path = tmp_path / f"from_{start}.duckdb"
        with duckdb.connect(str(path)) as con:
            assert migrate(con, target=start) == versions[:start]
        # reopen, as a later release would, and finish the job
        with duckdb.connect(str(path)) as con:
            assert migrate(con) == versions[start:]
            assert _catalog(con) == reference, f"migrating from version {start} differs from a fresh build"


def test_edited_applied_migration_is_an_error(tmp_path: Path, sql_copy: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        migrate(con)
        edited = sql_copy / "schema" / "0002_sites_batches.sql"
        edited.write_text(edited.read_text() + "\n-- a harmless-looking edit\n")
        with pytest.raises(MigrationError, match=r"0002_sites_batches\.sql was edited after it was applied"):
            migrate(con)


def test_unknown_applied_migration_is_an_error(tmp_path: Path, sql_copy: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        migrate(con)
        newest = sorted((sql_copy / "schema").glob("*.sql"))[-1]
        newest.unlink()
        with pytest.raises(MigrationError, match="that this checkout lacks"):
            migrate(con)


def test_gap_in_migration_numbers_is_an_error(sql_copy: Path) -> None:
    expected = len(list((sql_copy / "schema").glob("*.sql"))) + 1
    (sql_copy / "schema" / "0099_far_ahead.sql").write_text("SELECT 1;\n")
    with pytest.raises(MigrationError, match=f"expected migration number {expected:04d}"):
        discover()


def test_new_migration_is_applied_on_top(tmp_path: Path, sql_copy: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        before = migrate(con)
        nxt = len(before) + 1
        (sql_copy / "schema" / f"{nxt:04d}_add_note.sql").write_text(
            "ALTER TABLE raw.sites ADD COLUMN note VARCHAR;\n"
        )
        assert migrate(con) == [nxt]
        columns = [r[0] for r in con.execute("DESCRIBE raw.sites").fetchall()]
        assert columns[-1] == "note"


def test_failed_migration_leaves_the_previous_version(tmp_path: Path, sql_copy: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        before = migrate(con)
        nxt = len(before) + 1
        (sql_copy / "schema" / f"{nxt:04d}_broken.sql").write_text(
            "CREATE TABLE raw.half_done (a INTEGER);\nSELECT * FROM no_such_table;\n"
        )
        with pytest.raises(duckdb.CatalogException):
            migrate(con)
        assert con.execute("SELECT max(version) FROM main.schema_migrations").fetchall() == [(len(before),)]
        tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw'").fetchall()
        assert ("half_done",) not in tables


def test_value_sets_are_the_contract_ones() -> None:
    sets = value_sets()
    assert sets["clinical"]["sex"] == ["M", "F"]
    assert sets["clinical"]["diagnosis"] == ["OP", "MET"]
    assert sets["reads"]["modality"] == ["XR", "CT", "MR"]
    assert sets["reads"]["level"] == [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
    assert sets["reads"]["genant_grade"] == ["0", "1", "2", "3"]
    assert sets["imaging_manifest"]["modality"] == ["DX", "CR", "CT", "MR"]
    assert sets["imaging_manifest"]["sequence_family"] == ["T1", "T2", "FS", "other"]
    yes_no = [c for c, values in sets["reads"].items() if values == ["yes", "no"]]
    assert len(yes_no) == 12


def test_raw_tables_have_exactly_the_contract_types(tmp_path: Path) -> None:
    with duckdb.connect() as con:
        migrate(con)
        types = dict(
            ((t, c), d)
            for t, c, d in con.execute(
                "SELECT table_name, column_name, data_type FROM duckdb_columns() WHERE schema_name = 'raw'"
            ).fetchall()
        )
    for column in ("age_years", "source_row"):
        assert types[("clinical", column)] == "INTEGER"
    for column in ("genant_grade",):
        assert types[("reads", column)] == "INTEGER"
    for column in ("image_rows", "image_columns", "instance_count"):
        assert types[("imaging_manifest", column)] == "INTEGER"
    for column in ("height_cm", "weight_kg", "bmi", "dxa_t_score"):
        assert types[("clinical", column)] == "DOUBLE"
    assert types[("reads", "height_loss_pct")] == "DOUBLE"
    for column in ("field_strength", "repetition_time", "echo_time", "slice_thickness", "pixel_spacing"):
        assert types[("imaging_manifest", column)] == "DOUBLE"
    assert types[("clinical", "first_exam_date")] == "DATE"
    assert types[("imaging_manifest", "study_date")] == "DATE"
    assert types[("clinical", "pathology_confirmed")] == "VARCHAR"
    assert types[("reads", "fracture_line")] == "VARCHAR"


def test_rows_loaded_under_an_earlier_version_survive_the_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with duckdb.connect(str(path)) as con:
        migrate(con, target=4)
        con.execute(
            "INSERT INTO raw.clinical (site_id, patient_id, sex, source_row, batch_id, source_file, "
            "source_sha256, loaded_at, valid_from_seq) VALUES ('site01', 'P0000000000000001', 'F', 1, "
            "'site01_2026-01-01_000000000000', 'clinical.csv', repeat('a', 64), now(), 1)"
        )
        con.execute(
            "INSERT INTO raw.validation_summary VALUES "
            "('site01_2026-01-01_000000000000', 'site01', 'reads', 5, 4, 1, 0, 0)"
        )
    with duckdb.connect(str(path)) as con:
        migrate(con)
        assert con.execute("SELECT patient_id, sex FROM raw.clinical").fetchall() == [
            ("P0000000000000001", "F")
        ]
        assert con.execute(
            "SELECT rows_in, accepted, rejected_reason FROM raw.validation_summary"
        ).fetchall() == [(5, 4, None)]
        assert con.execute("SELECT count(*) FROM analysis.patients").fetchall() == [(1,)]
