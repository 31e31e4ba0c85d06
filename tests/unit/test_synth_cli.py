"""`cohortpool synth`: writes the drops, reports them, refuses bad usage with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cohortpool.cli import app

runner = CliRunner()


def test_synth_writes_drops_and_prints_a_json_summary(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["synth", str(tmp_path), "--sites", "2", "--seed", "3", "--max-patients", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["site_ids"] == ["site01", "site02"]
    assert (tmp_path / "site02" / "2025-03-01" / "reads.csv").is_file()
    assert (tmp_path / "_truth.json").is_file()
    # with two sites, site02 carries every planted defect
    assert summary["sites"][1]["defects"] == 9


def test_synth_prints_where_the_data_went(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["synth", str(tmp_path), "--sites", "1", "--max-patients", "1", "--night", "2024-12-31"]
    )
    assert result.exit_code == 0, result.output
    assert "site01: 1 patients" in result.output
    assert str(tmp_path / "site01" / "2024-12-31") in result.output


def test_synth_rejects_a_bad_night_with_usage_exit_code(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", str(tmp_path), "--night", "31/12/2024"])
    assert result.exit_code == 2
    assert "YYYY-MM-DD" in result.output
    assert not (tmp_path / "_truth.json").exists()


def test_synth_rejects_zero_sites(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", str(tmp_path), "--sites", "0"])
    assert result.exit_code == 2
