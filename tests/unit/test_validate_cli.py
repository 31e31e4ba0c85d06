"""`cohortpool validate`: exit codes 0 / 1 / 2 and what it prints."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner
from validate_support import copy_clean, set_cell

from cohortpool.cli import app
from cohortpool.validate import batch


def test_clean_submission_exits_zero_and_names_the_batch(tmp_path: Path) -> None:
    sub = copy_clean(tmp_path / "submission")
    result = CliRunner().invoke(app, ["validate", str(sub), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "clinical: 4 in, 4 accepted, 0 quarantined" in result.output
    batch = json.loads((tmp_path / "out" / "summary.json").read_text())["batch_id"]
    assert batch in result.output


def test_quarantined_row_exits_one(tmp_path: Path) -> None:
    sub = copy_clean(tmp_path / "submission")
    set_cell(sub, "reads", 3, "level", "L7")
    result = CliRunner().invoke(app, ["validate", str(sub), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "reads: 18 in, 17 accepted, 1 quarantined" in result.output


def test_folder_that_is_not_a_submission_exits_two_with_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "submission.json" in result.output and "cohortpool deid" in result.output


def test_help_documents_exit_codes() -> None:
    result = CliRunner().invoke(app, ["validate", "--help"])
    assert result.exit_code == 0
    assert "Exit code 0" in result.output or "exit code 0" in result.output.lower()


def test_both_engines_write_the_same_batch_but_for_the_gx_pages(tmp_path: Path) -> None:
    sub = copy_clean(tmp_path / "submission")
    set_cell(sub, "reads", 3, "level", "L7")
    set_cell(sub, "clinical", 2, "bmi", "231.70")
    outs = {}
    for engine in ("duckdb", "gx"):
        out = tmp_path / engine
        result = CliRunner().invoke(app, ["validate", str(sub), "--out", str(out), "--engine", engine])
        assert result.exit_code == 1, result.output
        outs[engine] = {
            p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted(out.rglob("*"))
            if p.is_file() and "gx" not in p.relative_to(out).parts
        }
    # accepted Parquet, quarantine.csv, warnings.csv, summary.json and the QC page: byte for byte
    assert outs["duckdb"] == outs["gx"]
    assert b"231.70" in outs["duckdb"]["quarantine.csv"]


def test_an_unknown_engine_is_bad_usage(tmp_path: Path) -> None:
    sub = copy_clean(tmp_path / "submission")
    result = CliRunner().invoke(
        app, ["validate", str(sub), "--out", str(tmp_path / "out"), "--engine", "spark"]
    )
    assert result.exit_code == 2
    assert "--engine must be one of duckdb, gx" in result.output
    assert not (tmp_path / "out").exists()


def test_a_scratch_database_out_of_memory_is_one_line_and_exit_three(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DuckDB's own out-of-memory error (real: a 256 KB limit) reaches the operator as one line naming
    the submission, not as DuckDB's advice on settings cohortpool fixes itself; nothing is written."""
    opened = batch._scratch_database

    def starved(folder: Path) -> duckdb.DuckDBPyConnection:
        connection = opened(folder)
        connection.execute("SET memory_limit = '256KB'")
        return connection

    monkeypatch.setattr(batch, "_scratch_database", starved)
    sub = copy_clean(tmp_path / "submission")
    result = CliRunner().invoke(app, ["validate", str(sub), "--out", str(tmp_path / "out")])
    assert result.exit_code == 3, result.output
    assert "submission: the validation's scratch database ran out of memory" in result.output
    assert "Traceback" not in result.output and "SET memory_limit" not in result.output
    assert not (tmp_path / "out").exists()
