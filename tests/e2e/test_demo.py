"""`cohortpool demo` end to end on the demo consortium, then the same demo night again: nothing changes."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cohortpool.warehouse import checksum

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("demo")]

COHORTPOOL = str(Path(sys.executable).with_name("cohortpool"))


def _digests(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_demo_writes_report_and_warehouse_and_a_second_run_changes_nothing(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    # the session's shared demo run (tests/e2e/conftest.py): CI pays for one demo, not one per test file
    out, demo = demo_run
    env = {k: v for k, v in os.environ.items() if k not in {"COHORTPOOL_SECRET", "PREFECT_HOME", "TMPDIR"}}
    assert demo.returncode == 1, demo.stderr[-3000:]  # the demo plants defects: something is quarantined
    assert "DEMO-ONLY secret" in demo.stdout
    assert f"report:     {out / 'report' / 'report.html'}" in demo.stdout
    assert f"warehouse:  {out / 'warehouse.duckdb'}" in demo.stdout
    assert (out / "report" / "report.html").is_file()
    # Prefect itself has nothing to warn about: no task carries a timeout it could not enforce in the
    # worker thread it runs in (tasks.py), which once added seven warnings to every night's log
    prefect_warnings = [
        line
        for line in (demo.stdout + demo.stderr).splitlines()
        if "| WARNING |" in line and ("| Task run" in line or "| Flow run" in line)
    ]
    assert prefect_warnings == []
    assert (out / "_truth.json").is_file() and not (out / "landing" / "_truth.json").exists()
    assert sorted(p.name for p in (out / "submissions").iterdir()) == ["site01", "site02", "site03"]
    # Prefect's home, result cache and scratch files stay inside the run's folder
    assert (out / ".prefect" / "results").is_dir() and any((out / ".prefect" / "results").iterdir())

    report, warehouse = _digests(out / "report"), checksum(out / "warehouse.duckdb")
    submissions = _digests(out / "submissions")
    again = subprocess.run(
        [COHORTPOOL, "demo", "--out", str(out)], env=env, capture_output=True, text=True, timeout=900
    )
    assert again.returncode == 0, again.stderr[-3000:]  # nothing new: nothing quarantined tonight
    assert "nothing new from: site01, site02, site03" in again.stderr + again.stdout
    assert _digests(out / "report") == report
    assert _digests(out / "submissions") == submissions
    assert checksum(out / "warehouse.duckdb") == warehouse


def test_run_refuses_to_start_without_a_real_secret(tmp_path: Path) -> None:
    """No secret, or the public demo one: `cohortpool run` stops before any work (exit 2)."""
    env = {k: v for k, v in os.environ.items() if k != "COHORTPOOL_SECRET"}
    (tmp_path / "landing").mkdir()
    result = subprocess.run(
        [COHORTPOOL, "run", str(tmp_path / "landing"), "--out", str(tmp_path / "out")],
        env={**env, "COHORTPOOL_CONFIG": str(tmp_path / "none.yaml")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no consortium secret" in result.stderr
    assert not (tmp_path / "out").exists()


def test_run_refuses_the_public_demo_secret(tmp_path: Path) -> None:
    from cohortpool.cli.run import DEMO_SECRET

    (tmp_path / "landing").mkdir()
    result = subprocess.run(
        [COHORTPOOL, "run", str(tmp_path / "landing"), "--out", str(tmp_path / "out")],
        env={
            **os.environ,
            "COHORTPOOL_SECRET": DEMO_SECRET,
            "COHORTPOOL_CONFIG": str(tmp_path / "none.yaml"),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "DEMO-ONLY secret is public" in result.stderr
