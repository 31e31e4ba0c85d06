"""Helpers of the hardening tests: the CLI in a subprocess, with a test secret, bounded in time."""

from __future__ import annotations

import os
import subprocess
import sys

#: a strong-looking test secret (never a real one); grepped for in every output
SECRET = "hardening-test-secret-5f0c9a7e31b24d68"


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``cohortpool ARGS`` in a fresh process (a hang fails the test instead of blocking it)."""
    full = {**os.environ, "COHORTPOOL_SECRET": SECRET, **(env or {})}
    command = [sys.executable, "-m", "cohortpool", *args]
    return subprocess.run(command, capture_output=True, text=True, env=full, timeout=timeout, check=False)
