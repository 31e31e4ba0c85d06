"""`cohortpool load`, `db migrate|status|checksum` and `export`: exit codes and what they print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohortpool.cli import app
from warehouse_batches import make_tables, write_batch

runner = CliRunner()
QUARANTINED = {
    "table": "reads",
    "source_row": 61,
    "key": "k",
    "expectation": "e",
    "severity": "error",
    "reason": "level must be T1..L5",
    "value": "",
}


def test_clean_batch_loads_with_exit_0_and_again_unchanged(tmp_path: Path) -> None:
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 3, seed=1))
    db = tmp_path / "w.duckdb"
    first = runner.invoke(app, ["load", str(batch), "--db", str(db)])
    assert first.exit_code == 0, first.output
    assert re.search(r"loaded site01_2026-11-01_\w{12} \(load 1\): clinical 3, reads 18", first.output)
    again = runner.invoke(app, ["load", str(batch), "--db", str(db)])
    assert again.exit_code == 0
    assert "unchanged" in again.output


def test_batch_with_quarantined_rows_exits_1(tmp_path: Path) -> None:
    tables = make_tables("site01", 3, seed=1)
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", tables, quarantine=[QUARANTINED])
    result = runner.invoke(app, ["load", str(batch), "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 1
    assert "quarantined 1" in result.output


def test_not_a_batch_exits_2_naming_the_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["load", str(tmp_path / "nope"), "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 2
    assert "nope is not a folder" in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["load", str(tmp_path / "empty"), "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 2
    assert "no summary.json" in result.output


def test_db_migrate_status_checksum_and_export(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    migrated = runner.invoke(app, ["db", "migrate", "--db", str(db)])
    assert migrated.exit_code == 0
    assert "applied 0001, 0002" in migrated.output
    assert "up to date" in runner.invoke(app, ["db", "migrate", "--db", str(db)]).output
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 3, seed=1))
    runner.invoke(app, ["load", str(batch), "--db", str(db)])
    status = runner.invoke(app, ["db", "status", "--db", str(db)])
    assert status.exit_code == 0
    assert "site01_2026-11-01" in status.output
    digest = runner.invoke(app, ["db", "checksum", "--db", str(db)])
    assert re.fullmatch(r"[0-9a-f]{64}\n", digest.output)
    before = runner.invoke(app, ["db", "checksum", "--db", str(db), "--as-of", "0"])
    assert before.output != digest.output
    exported = runner.invoke(app, ["export", "--format", "parquet", str(tmp_path / "out"), "--db", str(db)])
    assert exported.exit_code == 0
    assert (tmp_path / "out" / "vertebrae" / "site_id=site01" / "data_0.parquet").is_file()


def test_export_refuses_other_formats(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "--format", "csv", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "use --format parquet" in result.output


def test_default_warehouse_is_the_setting_relative_to_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batch = write_batch(tmp_path / "b", "site01", "2026-11-01", make_tables("site01", 2, seed=1))
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["load", str(batch)]).exit_code == 0
    assert (tmp_path / "data" / "warehouse.duckdb").is_file()
    monkeypatch.setenv("COHORTPOOL_WAREHOUSE", str(tmp_path / "elsewhere.duckdb"))
    assert runner.invoke(app, ["db", "migrate"]).exit_code == 0
    assert (tmp_path / "elsewhere.duckdb").is_file()
