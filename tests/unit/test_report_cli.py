"""`cohortpool report`: usage errors name the file at fault; an empty warehouse is not a silent success."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.contract import resources
from cohortpool.pipeline.report import views_for
from cohortpool.stats.plan import load_plan
from cohortpool.warehouse import connect, migrate
from cohortpool.warehouse.load import load_batch
from warehouse_batches import make_tables, write_batch

runner = CliRunner()


def test_missing_warehouse_exits_2_naming_it(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["report", "--db", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "none.duckdb" in result.output
    assert not (tmp_path / "o").exists()


def test_unreadable_plan_exits_2_naming_it_and_leaves_no_folder(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("name: [\n")
    db = tmp_path / "w.duckdb"
    con = connect(db)
    migrate(con)
    con.close()
    out = tmp_path / "o"
    result = runner.invoke(app, ["report", "--plan", str(plan), "--db", str(db), "--out", str(out)])
    assert result.exit_code == 2
    assert "plan.yaml" in result.output
    assert not out.exists()  # not even the data dictionary page


def test_the_default_is_the_published_copy_and_its_absence_says_how_to_publish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COHORTPOOL_WAREHOUSE", str(tmp_path / "w.duckdb"))
    result = runner.invoke(app, ["report", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert (
        str(tmp_path / "published" / "w.duckdb") in result.output and "cohortpool db publish" in result.output
    )


def test_warehouse_without_patients_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    con = connect(db)
    migrate(con)
    con.close()
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "no patients" in result.output
    assert not (tmp_path / "o").exists()


def test_report_reads_the_views_the_plan_names_and_its_own() -> None:
    plan = load_plan(resources.plan_path())
    assert views_for(plan) == ["patients", "vertebra_reads", "vertebrae"]


def test_a_warehouse_whose_every_patient_withdrew_exits_1_without_asking_for_a_load(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    tables = make_tables("site01", 3, seed=1)
    load_batch(db, write_batch(tmp_path / "b1", "site01", "2025-03-01", tables))
    withdrawn = list(tables["clinical"]["patient_id"])
    empty = {name: frame.iloc[0:0] for name, frame in tables.items()}
    load_batch(db, write_batch(tmp_path / "b2", "site01", "2025-03-02", empty, withdrawn=withdrawn))
    result = runner.invoke(app, ["report", "--db", str(db), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "every one withdrawn" in result.output and "load validated batches first" not in result.output
    assert not (tmp_path / "o").exists()
