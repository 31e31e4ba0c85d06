"""Helpers of the hardening tests: the CLI in a subprocess, with a test secret, bounded in time."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

#: a strong-looking test secret (never a real one); grepped for in every output
SECRET = "fe0f848f593087bd93566e04463ff52031225c4e1ab8ab6d4d975bea3e4ea63f"


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``cohortpool ARGS`` in a fresh process (a hang fails the test instead of blocking it)."""
    full = {**os.environ, "COHORTPOOL_SECRET": SECRET, **(env or {})}
    command = [sys.executable, "-m", "cohortpool", *args]
    return subprocess.run(command, capture_output=True, text=True, env=full, timeout=timeout, check=False)


#: the CLI with a pause injected part-way through one step (tests only: the product has no such hook)
PAUSING_CLI = Path(__file__).with_name("pausing_cohortpool.py")


def start_run(
    landing: Path,
    out: Path,
    home: Path | None = None,
    pause_at: str | None = None,
    pause_seconds: float = 120,
    args: tuple[str, ...] = (),
    **settings: str,
) -> subprocess.Popen[str]:
    """``cohortpool run LANDING --out OUT [ARGS]`` started in its own process group, with
    ``COHORTPOOL_<KEY>`` set from ``settings``; ``home`` keeps Prefect's database elsewhere than OUT;
    ``pause_at`` runs it through :data:`PAUSING_CLI`, which sleeps part-way through that step.

    The temporary Prefect server runs in a session of its own and dies with the run's process."""
    env = {**os.environ, "COHORTPOOL_SECRET": SECRET}
    env.pop("PREFECT_HOME", None)
    env.pop("PREFECT_API_URL", None)  # its own temporary Prefect server
    env.pop("TMPDIR", None)
    if home is not None:  # Prefect's database and scratch space elsewhere than OUT
        env["PREFECT_HOME"], env["TMPDIR"] = str(home), str(home)
        home.mkdir(parents=True, exist_ok=True)
    env.update({f"COHORTPOOL_{k.upper()}": v for k, v in settings.items()})
    entry = ["-m", "cohortpool"]
    if pause_at is not None:
        env["COHORTPOOL_TEST_PAUSE_AT"], env["COHORTPOOL_TEST_PAUSE_SECONDS"] = pause_at, str(pause_seconds)
        entry = [str(PAUSING_CLI)]
    command = [sys.executable, *entry, "run", str(landing), "--out", str(out), *args]
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


#: what makes a spreadsheet evaluate a cell (OWASP CSV injection): checked in every CSV cohortpool writes
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cells(path: Path) -> list[str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def live_formulas(path: Path) -> list[str]:
    """Cells a spreadsheet would evaluate: start with = + - @ tab CR and are not numbers."""
    live = []
    for cell in csv_cells(path):
        if cell.startswith(FORMULA_START):
            try:
                float(cell)
            except ValueError:
                live.append(cell)
    return live


def drop_identifiers(landing: Path, site: str = "*") -> list[str]:
    """Every identifier the synthetic drops of ``site`` carry, which must never reach the hub: the
    tables' MRNs, names, addresses, phones, accession numbers and readers, and the PACS folder names
    (``<NAME>_<MRN>``)."""
    found: set[str] = set()
    for table, columns in (
        ("clinical.csv", ("mrn", "patient_name", "address", "phone")),
        ("reads.csv", ("mrn", "accession_number", "reader")),
    ):
        for path in landing.glob(f"{site}/*/{table}"):
            with path.open(encoding="utf-8", newline="") as handle:
                found.update(v for row in csv.DictReader(handle) for c in columns if (v := row.get(c)))
    found.update(folder.name for folder in landing.glob(f"{site}/*/dicom/*"))
    return sorted(found)


def _stat(pid: int) -> list[str] | None:
    """Fields of ``/proc/PID/stat`` after the command name (state first), or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (an exited child its parent has not reaped yet)."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (children, their children, ...), from ``/proc``."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None and fields[0] != "Z":
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def environ(pid: int) -> dict[str, str]:
    """The environment ``pid`` was started with (``/proc/PID/environ``)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.decode("utf-8", "replace").partition("=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


def wait_until_gone(pids: list[int], timeout: float = 15) -> list[int]:
    """Wait until none of ``pids`` lives; those still alive after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left
