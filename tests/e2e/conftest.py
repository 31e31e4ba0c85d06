"""One demo consortium run shared by the end-to-end tests that only read its outputs.

`cohortpool demo` takes minutes; tests that inspect what it wrote (the report, the warehouse) use this
session fixture instead of running their own. Mark them ``@pytest.mark.xdist_group("demo")`` so that
under ``-n 2 --dist loadgroup`` one worker runs them all and the demo runs once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def demo_env() -> dict[str, str]:
    """The environment a newcomer has: no secret, no Prefect home, no TMPDIR of ours."""
    return {k: v for k, v in os.environ.items() if k not in {"COHORTPOOL_SECRET", "PREFECT_HOME", "TMPDIR"}}


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One `cohortpool demo` run for the whole session: its output folder and what it printed."""
    out = tmp_path_factory.mktemp("demo") / "demo_out"
    result = subprocess.run(
        [sys.executable, "-m", "cohortpool", "demo", "--out", str(out)],
        env=demo_env(),
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    return out, result


@pytest.fixture(scope="session")
def demo_out(demo_run: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    """The output folder of the session's `cohortpool demo` run (landing, submissions, warehouse, report)."""
    out, result = demo_run
    # 1: the demo plants defects, so something is quarantined by design
    assert result.returncode in (0, 1), result.stderr[-3000:]
    assert (out / "report" / "report.html").is_file(), result.stdout[-3000:]
    return out
