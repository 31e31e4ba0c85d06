"""Runs against each other and against signals (`cohortpool run`, real subprocesses, real Prefect).

- two runs on one output folder: the second waits, naming the first's PID, without starting Prefect (no
  server, no database migration of its own) until the first ends, then runs; with ``--no-wait`` it stops
  with exit 2 and one line naming the PID;
- ``kill -9`` of a run's process alone (not its group) leaves nothing behind: no temporary Prefect server,
  no de-identification worker, and the server never had the secret in its environment;
- Ctrl-C: SIGINT to the run's process (and, as a terminal sends it, to its whole process group) stops the
  run within 10 s with one line, no traceback, exit 130 and no process left (SIGTERM: the same, exit
  143); the rerun then ends exactly like an uninterrupted run (warehouse content checksum, report bytes).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from support import SECRET, alive, cli, descendants, environ, finish_run, start_run, wait_until_gone

from cohortpool.synth import write_consortium

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("hardening-run-control")]
NIGHT = "2025-03-01"
#: the temporary Prefect server is the descendant started with this (Prefect's own switch, kept)
SERVER_MARK = ("PREFECT__SERVER_EPHEMERAL", "1")


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    landing = tmp_path_factory.mktemp("run-control") / "landing"
    write_consortium(landing, sites=2, max_patients=3)
    (landing / "_truth.json").unlink()
    (landing / "site03").mkdir()  # declared in the tests' registry: a site with nothing new tonight
    return landing


class _Lines:
    """A running process's stderr, read line by line in a thread (its stdout is read at the end)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc, self.lines = proc, []
        assert proc.stderr is not None
        self._thread = threading.Thread(target=lambda: self.lines.extend(iter(proc.stderr.readline, "")))
        self._thread.start()

    def wait_for(self, text: str, timeout: float = 300) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if text in line:
                    return line
            assert self.proc.poll() is None, f"ended before saying {text!r}: {self.lines}"
            time.sleep(0.1)
        raise AssertionError(f"never said {text!r}: {self.lines}")

    def finish(self, timeout: float = 600) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise
        self._thread.join(timeout=30)
        assert self.proc.stdout is not None
        return code, self.proc.stdout.read() + "".join(self.lines)


def _ready(out: Path, step: str) -> Path:
    """What exists once a run paused at ``step`` is inside its pause (``pausing_cohortpool.py``)."""
    return {
        "deidentify": out / "submissions" / "site01" / NIGHT / "dicom",  # part of dicom/ placed
        "validate": out / "validated" / "site01" / f"{NIGHT}.partial" / "accepted" / "clinical.parquet",
        "load": out / "warehouse.duckdb",  # the load's transaction open
    }[step]


def _paused(proc: subprocess.Popen[str], out: Path, step: str = "deidentify", timeout: float = 400) -> None:
    """Wait until the run is inside its test pause at ``step``."""
    ready = _ready(out, step)
    deadline = time.monotonic() + timeout
    while not ready.exists():
        assert proc.poll() is None, f"the run ended before pausing: {proc.communicate()}"
        assert time.monotonic() < deadline, f"{ready} never appeared"
        time.sleep(0.1)
    time.sleep(1.0)


def _server(family: list[int]) -> int:
    servers = [p for p in family if environ(p).get(SERVER_MARK[0]) == SERVER_MARK[1]]
    assert len(servers) == 1, f"expected one temporary Prefect server among {family}: {servers}"
    return servers[0]


def _with_secret(family: list[int]) -> list[int]:
    found = []
    for pid in family:
        try:
            if environ(pid).get("COHORTPOOL_SECRET") == SECRET:
                found.append(pid)
        except OSError:  # ended meanwhile
            continue
    return found


def test_a_second_run_waits_naming_the_holder_and_no_wait_refuses(landing: Path, tmp_path: Path) -> None:
    out, home = tmp_path / "out", tmp_path / "prefect-home"  # an operator's PREFECT_HOME, outside OUT
    first = start_run(landing, out, home=home, pause_at="deidentify", pause_seconds=600)
    try:
        _paused(first, out)
        assert (out / ".run.lock").read_text().strip() == str(first.pid)
        # --no-wait: one line naming the holder, exit 2, quickly (nothing of Prefect imported)
        refused = cli("run", str(landing), "--out", str(out), "--no-wait", timeout=120)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stderr.strip().splitlines() == [
            f"error: another run (pid {first.pid}) is using {out} (--no-wait)"
        ]
        # another output folder, the same Prefect home (its database): refused the same way
        elsewhere = cli(
            "run", str(landing), "--out", str(tmp_path / "elsewhere"), "--no-wait",
            env={"PREFECT_HOME": str(home), "TMPDIR": str(home)}, timeout=120,
        )  # fmt: skip
        assert elsewhere.returncode == 2, elsewhere.stdout + elsewhere.stderr
        assert elsewhere.stderr.strip().splitlines() == [
            f"error: another run (pid {first.pid}) is using Prefect's home {home} (--no-wait)"
        ]
        # a second run waits, saying so and naming the holder, before any Prefect server of its own
        second = start_run(landing, out, home=home)
        said = _Lines(second)
        line = said.wait_for("waiting for it to finish")
        assert f"another run (pid {first.pid}) is using {out}" in line
        time.sleep(2)
        assert second.poll() is None
        assert descendants(second.pid) == [], "the waiting run started processes (a Prefect server?)"
        os.killpg(first.pid, signal.SIGKILL)  # the first run dies: its lock goes with it
        first.communicate()
        code, text = said.finish()
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.communicate()
    assert code == 1, text  # site02's planted defects are quarantined
    assert "Traceback" not in text and "duplicate column" not in text
    assert sum("waiting for it to finish" in line for line in text.splitlines()) == 1
    assert (out / "report" / "report.html").is_file()


def test_kill_9_of_a_run_leaves_no_server_and_no_process_with_the_secret(
    landing: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    run = start_run(landing, out, pause_at="deidentify", pause_seconds=600)
    try:
        _paused(run, out)
        family = descendants(run.pid)
        server = _server(family)
        assert SECRET not in Path(f"/proc/{server}/environ").read_text(errors="replace")
        assert not [k for k in environ(server) if k.startswith("COHORTPOOL_")]
        # negative control: the de-identification workers do carry the secret (they need it)
        assert _with_secret(family), f"no process of the run has the secret: {family}"
        os.kill(run.pid, signal.SIGKILL)  # the run's process only, as an OOM killer or an operator would
        run.communicate()
        assert wait_until_gone(family) == [], "processes of the killed run live on"
        assert not alive(server)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.communicate()


def _interrupt(proc: subprocess.Popen[str], signum: int, group: bool) -> tuple[int, str, float, list[int]]:
    family = descendants(proc.pid)
    _server(family)
    started = time.monotonic()
    if group:  # as a terminal's Ctrl-C: the whole foreground process group
        os.killpg(proc.pid, signum)
    else:
        proc.send_signal(signum)
    try:
        stdout, stderr = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode, stdout + stderr, time.monotonic() - started, family


def _tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_ctrl_c_stops_a_run_at_once_and_the_rerun_equals_an_uninterrupted_run(
    landing: Path, tmp_path: Path
) -> None:
    from cohortpool.warehouse import checksum

    out = tmp_path / "out"
    # Ctrl-C to the run's process, SIGTERM (a service manager) to it, Ctrl-C as a terminal sends it
    for pause_at, signum, group in (
        ("deidentify", signal.SIGINT, False),
        ("validate", signal.SIGTERM, False),
        ("load", signal.SIGINT, True),
    ):
        run = start_run(landing, out, pause_at=pause_at, pause_seconds=600)
        _paused(run, out, pause_at)
        code, text, seconds, family = _interrupt(run, signum, group)
        assert code == 128 + signum, text  # 130 for SIGINT
        assert seconds <= 10, f"{seconds:.1f} s to stop"
        assert "Traceback" not in text and "KeyboardInterrupt" not in text, text
        said = [line for line in text.splitlines() if "interrupted" in line]
        assert said == [
            f"interrupted ({signal.Signals(signum).name}): the run stopped; finished steps are kept, "
            "run it again to finish the rest"
        ], text
        # after it, only what other threads had already queued may follow (Prefect's own warnings)
        assert "cohortpool" not in text.split(said[0], 1)[1].lower(), text
        assert wait_until_gone(family) == [], f"processes of the interrupted run live on ({pause_at})"
    code, text = finish_run(start_run(landing, out))
    reference = tmp_path / "reference"
    ref_code, ref_text = finish_run(start_run(landing, reference))
    assert (code, ref_code) == (1, 1), text + ref_text
    assert checksum(out / "warehouse.duckdb") == checksum(reference / "warehouse.duckdb")
    assert _tree(out / "report") == _tree(reference / "report")
