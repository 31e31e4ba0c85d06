"""`cohortpool listen` as a real process: dcmtk's storescu pushes, complete files land, none half-written.

Also what the listener costs: a large instance is received in bounded memory (the process's peak RSS is
read from /proc), an instance over ``--max-instance-mb`` is refused with status A700 and leaves nothing,
a transfer cut off half-way leaves nothing, and on a terminal each association gets a line of counts.
"""

from __future__ import annotations

import os
import pty
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest

from ingest_testdata import dataset_equal, write_large_instance, write_study

pytestmark = pytest.mark.integration


@dataclass
class RunningListener:
    process: subprocess.Popen[str]
    port: int
    landing: Path
    output: list[str]
    errors: Path


def _start(tmp_path: Path, *extra: str, stderr: int | None = None) -> RunningListener:
    """``cohortpool listen`` on a free port; stderr to a file, or to ``stderr`` (a terminal) if given."""
    if shutil.which("storescu") is None:
        pytest.skip("needs dcmtk's storescu (apt-get install dcmtk; .ci/run installs it)")
    landing = tmp_path / "landing"
    errors = tmp_path / "listen.err"
    err = errors.open("w") if stderr is None else stderr
    # --port 0: the listener binds a free port itself and prints it, so no other process can take it first
    process = subprocess.Popen(
        [sys.executable, "-m", "cohortpool", "listen", "--port", "0", "--landing", str(landing),
         "--site", "site03", "--ae-title", "COHORTPOOL", "--night", "2024-07-01", *extra],
        stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, "TERM": "dumb"},
    )  # fmt: skip
    if stderr is None:
        err.close()  # type: ignore[union-attr]
    assert process.stdout is not None
    output: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if line.startswith("listening on"):
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    # 60 s: a loaded, shared machine can take long to import; CI usually needs about 2 s
    if not ready.wait(60):
        _stop(process)
        raise AssertionError(f"listener did not start: {output} {errors.read_text()[-2000:]}")
    port = int(output[0].split(" as AE")[0].rsplit(":", 1)[1])
    return RunningListener(process, port, landing, output, errors)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[RunningListener]:
    running = _start(tmp_path)
    try:
        yield running
    finally:
        _stop(running.process)


def _kib(pid: int, field: str) -> int:
    """A memory figure of a process from /proc (VmRSS: now; VmHWM: its peak so far), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _storescu(port: int, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["storescu", "-aec", "COHORTPOOL", "127.0.0.1", str(port), *map(str, files)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _after_stop(landing: Path) -> list[Path]:
    """Anything hidden or temporary left in the landing folder (the private spool included)."""
    return [p for p in landing.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]


def test_storescu_push_lands_complete_identical_data_sets(listener: RunningListener, tmp_path: Path) -> None:
    # one listener process for the whole story: starting one costs seconds on a loaded machine
    echo = ["echoscu", "127.0.0.1", str(listener.port)]
    assert subprocess.run([*echo, "-aec", "COHORTPOOL"], capture_output=True, timeout=30).returncode == 0
    assert subprocess.run([*echo, "-aec", "SOMEONE_ELSE"], capture_output=True, timeout=30).returncode != 0

    export = tmp_path / "export"
    studies = {m: write_study(export, m, n, tag=m) for m, n in (("CT", 4), ("MR", 2), ("DX", 1), ("OT", 1))}
    files = [f for _, fs in studies.values() for f in fs]
    subprocess.run(
        ["storescu", "-aec", "COHORTPOOL", "127.0.0.1", str(listener.port), *map(str, files)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    # storescu returns once every C-STORE was answered, and we answer only after the rename
    night = listener.landing / "site03" / "2024-07-01" / "dicom"
    landed = {p.stem: p for p in night.rglob("*.dcm")}
    for study_uid, study_files in studies.values():
        for original in study_files:
            ds = pydicom.dcmread(original, stop_before_pixels=True)
            stored = landed.pop(str(ds.SOPInstanceUID))
            assert stored.relative_to(night).parts[:2] == (study_uid, str(ds.SeriesInstanceUID))
            assert dataset_equal(stored, original)
    assert landed == {}
    # nothing half-written: the only hidden entry is the (empty) private spool folder of the running listener
    (spool,) = _after_stop(listener.landing)
    assert spool.name == f".listen-spool-{listener.process.pid}" and list(spool.iterdir()) == []

    listener.process.send_signal(signal.SIGTERM)
    assert listener.process.wait(timeout=10) == 0
    summary = f"stored {len(files)} instances, rejected 0"
    deadline = time.monotonic() + 5  # the reader thread may still be draining the pipe
    while not any(summary in line for line in listener.output) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(summary in line for line in listener.output), listener.output
    # not a terminal: no line per association (logs stay quiet); the spool folder went with the process
    assert "association 1" not in listener.errors.read_text()
    assert _after_stop(listener.landing) == []


def test_a_large_instance_is_received_in_bounded_memory_and_limits_refuse_leaving_nothing(
    tmp_path: Path,
) -> None:
    export = tmp_path / "export"
    export.mkdir()
    large, too_large, cut = export / "large.dcm", export / "too_large.dcm", export / "cut.dcm"
    large_uid = write_large_instance(large, 150)
    write_large_instance(too_large, 200)
    write_large_instance(cut, 150)
    running = _start(tmp_path, "--max-instance-mb", "160")
    try:
        pid = running.process.pid
        before = _kib(pid, "VmRSS")
        assert _storescu(running.port, large).returncode == 0
        # the listener held no instance in memory: its peak grew by far less than the 150 MB received
        # (before streaming to disk, a 100 MB instance raised it by 180 MB)
        growth_mb = (_kib(pid, "VmHWM") - before) / 1024
        assert growth_mb < 40, f"peak RSS grew by {growth_mb:.0f} MiB receiving 150 MB"
        (stored,) = running.landing.rglob("*.dcm")
        assert stored.stem == large_uid
        with large.open("rb") as a, stored.open("rb") as b:  # pixel data as sent, to the last byte
            a.seek(-(1 << 20), os.SEEK_END)
            b.seek(-(1 << 20), os.SEEK_END)
            assert a.read() == b.read()
        assert stored.stat().st_size - large.stat().st_size < 256  # file meta rewritten by the receiver

        refused = _storescu(running.port, too_large)
        assert refused.returncode != 0  # storescu reports the failed store

        spool = next(running.landing.glob(".listen-spool-*"))
        sender = subprocess.Popen(
            ["storescu", "-aec", "COHORTPOOL", "127.0.0.1", str(running.port), str(cut)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while sum(p.stat().st_size for p in spool.glob("*")) < 20_000_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        sender.kill()  # the modality dies half-way through the instance
        sender.wait(timeout=10)
        deadline = time.monotonic() + 20
        while list(spool.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(spool.iterdir()) == []  # the half-received instance is gone with the connection
        assert [p.stem for p in running.landing.rglob("*.dcm")] == [large_uid]
    finally:
        _stop(running.process)
    assert "stopped: stored 1 instances, rejected 1, 3 associations" in "".join(running.output)
    assert "larger than the listener's maximum of 160 MiB" in running.errors.read_text()
    assert _after_stop(running.landing) == []


def test_on_a_terminal_each_association_gets_a_line_of_counts(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    try:
        running = _start(tmp_path, stderr=follower)
    finally:
        os.close(follower)
    seen: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        _, files = write_study(tmp_path / "export", "CT", 3, tag="t")
        assert _storescu(running.port, *files).returncode == 0
        assert subprocess.run(["echoscu", "-aec", "COHORTPOOL", "127.0.0.1", str(running.port)],
                              capture_output=True, timeout=30).returncode == 0  # fmt: skip
        deadline = time.monotonic() + 20
        while b"association 2" not in b"".join(seen) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        _stop(running.process)
        reader.join(timeout=5)
        os.close(leader)
    text = b"".join(seen).decode(errors="replace")
    assert "association 1 released after" in text and ": 3 stored (" in text
    assert "association 2 released after" in text and ": 0 stored (0.0 MB)" in text
    for path in files:  # counts only: no UID, file or patient name on the terminal
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert str(ds.SOPInstanceUID) not in text and str(ds.PatientName) not in text
