"""Helpers of the hardening tests: the CLI in a subprocess, with a test secret, bounded in time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

#: a strong-looking test secret (never a real one); grepped for in every output
SECRET = "hardening-test-secret-5f0c9a7e31b24d68"


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``cohortpool ARGS`` in a fresh process (a hang fails the test instead of blocking it)."""
    full = {**os.environ, "COHORTPOOL_SECRET": SECRET, **(env or {})}
    command = [sys.executable, "-m", "cohortpool", *args]
    return subprocess.run(command, capture_output=True, text=True, env=full, timeout=timeout, check=False)


def start_run(landing: Path, out: Path, home: Path | None = None, **settings: str) -> subprocess.Popen[str]:
    """``cohortpool run LANDING --out OUT`` started in its own process group (Prefect server included),
    with ``COHORTPOOL_<KEY>`` set from ``settings``; ``home`` keeps Prefect's database elsewhere than OUT."""
    env = {**os.environ, "COHORTPOOL_SECRET": SECRET}
    env.pop("PREFECT_HOME", None)
    env.pop("TMPDIR", None)
    if home is not None:  # Prefect's database and scratch space elsewhere than OUT
        env["PREFECT_HOME"], env["TMPDIR"] = str(home), str(home)
        home.mkdir(parents=True, exist_ok=True)
    env.update({f"COHORTPOOL_{k.upper()}": v for k, v in settings.items()})
    command = [sys.executable, "-m", "cohortpool", "run", str(landing), "--out", str(out)]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def finish_run(proc: subprocess.Popen[str], timeout: float = 400) -> tuple[int, str]:
    """Wait for a run; its exit code and terminal output (a hang kills its process group and fails)."""
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode, stdout + stderr
