"""`cohortpool listen` as a real process: dcmtk's storescu pushes, complete files land, none half-written."""

from __future__ import annotations

import os
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

from ingest_testdata import dataset_equal, write_study

pytestmark = pytest.mark.integration


@dataclass
class RunningListener:
    process: subprocess.Popen[str]
    port: int
    landing: Path
    output: list[str]


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[RunningListener]:
    if shutil.which("storescu") is None:
        pytest.skip("needs dcmtk's storescu (apt-get install dcmtk; .ci/run installs it)")
    landing = tmp_path / "landing"
    errors = tmp_path / "listen.err"
    err_file = errors.open("w")
    # --port 0: the listener binds a free port itself and prints it, so no other process can take it first
    process = subprocess.Popen(
        [sys.executable, "-m", "cohortpool", "listen", "--port", "0", "--landing", str(landing),
         "--site", "site03", "--ae-title", "COHORTPOOL", "--night", "2024-07-01"],
        stdout=subprocess.PIPE, stderr=err_file, text=True, env={**os.environ, "TERM": "dumb"},
    )  # fmt: skip
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
    try:
        # 60 s: a loaded, shared machine can take long to import; CI usually needs about 2 s
        assert ready.wait(60), f"listener did not start: {output} {errors.read_text()[-2000:]}"
        port = int(output[0].split(" as AE")[0].rsplit(":", 1)[1])
        yield RunningListener(process, port, landing, output)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        err_file.close()


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
    assert not [p for p in listener.landing.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]

    listener.process.send_signal(signal.SIGTERM)
    assert listener.process.wait(timeout=10) == 0
    summary = f"stored {len(files)} instances, rejected 0"
    deadline = time.monotonic() + 5  # the reader thread may still be draining the pipe
    while not any(summary in line for line in listener.output) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(summary in line for line in listener.output), listener.output
