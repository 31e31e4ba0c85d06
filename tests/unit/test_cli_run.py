"""`cohortpool run / demo / serve`: usage and configuration errors exit 2 before any work starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cohortpool.cli import app

runner = CliRunner()


def test_run_without_a_secret_exits_2_and_says_where_the_secret_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COHORTPOOL_SECRET", raising=False)
    result = runner.invoke(app, ["run", str(tmp_path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "COHORTPOOL_SECRET" in result.output
    assert not (tmp_path / "out").exists()


def test_run_on_a_missing_landing_folder_exits_2(tmp_path: Path, test_secret: str) -> None:
    result = runner.invoke(app, ["run", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "nowhere does not exist" in result.output


def test_serve_rejects_a_bad_cron_before_registering_anything(tmp_path: Path, test_secret: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cohortpool", "serve", "--cron", "every night", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "'every night' is not a cron expression" in result.stderr
    assert not (tmp_path / ".prefect").exists()
