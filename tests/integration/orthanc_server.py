"""A real Orthanc (Debian package) on loopback for the tests: started per session, emptied per test.

Studies are pushed with dcmtk's ``storescu``, as a modality would.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ORTHANC = Path("/usr/sbin/Orthanc")
PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))


@dataclass(frozen=True)
class OrthancServer:
    url: str
    dicom_port: int
    aet: str = "ORTHANC"
    storage: Path | None = None  # Orthanc's StorageDirectory

    def instance_ids(self, study_uid: str) -> dict[str, str]:
        """``{SOPInstanceUID as Orthanc indexed it: Orthanc instance id}`` of one study."""
        found = httpx.post(f"{self.url}/tools/lookup", content=study_uid, timeout=10).json()
        (study,) = [f["ID"] for f in found if f["Type"] == "Study"]
        listing = httpx.get(f"{self.url}/studies/{study}/instances", timeout=10).json()
        return {item["MainDicomTags"]["SOPInstanceUID"]: item["ID"] for item in listing}

    def stored_file(self, instance_id: str) -> Path:
        """Where Orthanc keeps an instance's file (its storage area: ``xx/yy/<uuid>``)."""
        assert self.storage is not None
        info = httpx.get(f"{self.url}/instances/{instance_id}/attachments/dicom/info", timeout=10).json()
        uuid = str(info["Uuid"])
        return self.storage / uuid[:2] / uuid[2:4] / uuid

    def push(self, files: list[Path]) -> None:
        """Send files with dcmtk's storescu, as a modality would."""
        subprocess.run(
            ["storescu", "-aec", self.aet, "127.0.0.1", str(self.dicom_port), *map(str, files)],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip

    def clear(self) -> None:
        for study in httpx.get(f"{self.url}/studies", timeout=10).json():
            httpx.delete(f"{self.url}/studies/{study}", timeout=10).raise_for_status()

    def wait_stable(self, study_uids: list[str], timeout: float = 20.0) -> None:
        """Wait until Orthanc has declared every study stable (StableAge is 1 s here)."""
        deadline = time.monotonic() + timeout
        pending = set(study_uids)
        while pending and time.monotonic() < deadline:
            for uid in list(pending):
                found = httpx.post(f"{self.url}/tools/lookup", content=uid, timeout=10).json()
                ids = [f["ID"] for f in found if f["Type"] == "Study"]
                if ids and httpx.get(f"{self.url}/studies/{ids[0]}", timeout=10).json().get("IsStable"):
                    pending.discard(uid)
            time.sleep(0.3)
        assert not pending, f"Orthanc did not declare {len(pending)} studies stable in {timeout} s"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dicomweb_plugin() -> Path | None:
    for folder in PLUGIN_DIRS:
        found = sorted(folder.glob("libOrthancDicomWeb.so*")) if folder.is_dir() else []
        if found:
            return found[0]
    return None


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


def orthanc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """Start Orthanc (skip when it is not installed); yields the running server, stops it after."""
    plugin = _dicomweb_plugin()
    if not ORTHANC.exists() or plugin is None or shutil.which("storescu") is None:
        pytest.skip("needs Orthanc, its DICOMweb plugin and dcmtk's storescu (apt-get install orthanc "
                    "orthanc-dicomweb dcmtk; .ci/run installs them)")  # fmt: skip
    root = tmp_path_factory.mktemp("orthanc")
    for attempt in range(3):  # a port found free can be taken before Orthanc binds it: try new ones
        started = _start_orthanc(root, plugin, attempt)
        if started is None:
            continue
        process, server = started
        try:
            yield server
        finally:
            _stop(process)
        return
    pytest.fail(f"Orthanc did not start in 3 attempts; see the logs in {root}")


def _start_orthanc(
    root: Path, plugin: Path, attempt: int
) -> tuple[subprocess.Popen[bytes], OrthancServer] | None:
    """Start Orthanc on free loopback ports with a config in ``root``; None if it did not come up."""
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "cohortpool-test",
        "StorageDirectory": str(root / "storage"),
        "IndexDirectory": str(root / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,  # answers loopback only
        "AuthenticationEnabled": False,
        "DicomCheckCalledAet": True,
        # the DICOM port listens on every interface: accept stores only from storescu on loopback
        "DicomAlwaysAllowStore": False,
        "DicomCheckModalityHost": True,
        "DicomModalities": {"storescu": ["STORESCU", "127.0.0.1", 104]},
        "StableAge": 1,  # seconds without a new instance before a study is "stable" (default 60)
        "MaximumStorageCacheSize": 0,  # every read goes to the storage area (a test may take a file away)
        "HttpThreadsCount": 4,
        "DicomThreadsCount": 2,
        "SaveJobs": False,
        "Plugins": [str(plugin)],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    config_file = root / f"orthanc-{attempt}.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    with (root / f"orthanc-{attempt}.log").open("wb") as log:
        process = subprocess.Popen([str(ORTHANC), str(config_file)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/system", timeout=1).status_code == 200:
                return process, OrthancServer(url, dicom_port, storage=root / "storage")
        except httpx.TransportError:
            time.sleep(0.1)
    if process.poll() is None:
        _stop(process)
    return None
