"""What importing cohortpool sets for the whole process: checked in fresh interpreters, as an entry point
starts."""

from __future__ import annotations

import os
import subprocess
import sys

_POOL = "import cohortpool, pyarrow as pa; print(pa.default_memory_pool().backend_name)"


def _run(code: str, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return proc.stdout.strip()


def test_arrow_allocates_through_the_c_library_unless_the_environment_chooses() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    # mimalloc, Arrow's default, kept a validation's freed chunks (issue 16 item 2)
    assert _run(_POOL, env) == "system"
    assert _run(_POOL, {**env, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"}) == "mimalloc"


def test_telemetry_is_off_in_a_process_that_imports_cohortpool() -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("ANALYTICS_ENABLED") and k != "DO_NOT_TRACK"}
    code = (
        "import os, cohortpool; "
        "print(os.environ['GX_ANALYTICS_ENABLED'], os.environ['PREFECT_SERVER_ANALYTICS_ENABLED'], "
        "os.environ['DO_NOT_TRACK'])"
    )
    assert _run(code, env) == "false false 1"
