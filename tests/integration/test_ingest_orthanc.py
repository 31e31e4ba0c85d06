"""Fetching from a real Orthanc on loopback: exactly the pushed studies, then nothing, then only the new.

One Orthanc per test session (it starts in about a second); every test empties it first, so the tests
do not depend on each other's order. Studies are pushed with dcmtk's ``storescu``, as a modality would.
"""

from __future__ import annotations

import datetime as dt
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
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.ingest import SourceError, fetch_new_studies, mark_processed, scan_landing
from ingest_testdata import dataset_equal, write_study

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("orthanc")]

ORTHANC = Path("/usr/sbin/Orthanc")
PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))


@dataclass(frozen=True)
class OrthancServer:
    url: str
    dicom_port: int
    aet: str = "ORTHANC"

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


def _free_port() -> int:
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


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
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
    http_port, dicom_port = _free_port(), _free_port()
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
                return process, OrthancServer(url, dicom_port)
        except httpx.TransportError:
            time.sleep(0.1)
    if process.poll() is None:
        _stop(process)
    return None


def _landed(landing: Path, site: str, night: str) -> dict[str, Path]:
    folder = landing / site / night / "dicom"
    return {p.stem: p for p in folder.rglob("*.dcm")} if folder.exists() else {}


def _sop_uids(files: list[Path]) -> dict[str, Path]:
    import pydicom

    return {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID): f for f in files}


def test_orthanc_change_log_fetches_exactly_the_new_studies_each_night(
    orthanc: OrthancServer, tmp_path: Path
) -> None:
    orthanc.clear()
    landing, state = tmp_path / "landing", tmp_path / "state"
    pushed: list[Path] = []
    uids = []
    for modality, n in (("CT", 3), ("MR", 2), ("DX", 2)):
        uid, files = write_study(tmp_path / "export", modality, n, tag=f"n1{modality}")
        uids.append(uid)
        pushed += files
    orthanc.push(pushed)
    orthanc.wait_stable(uids)

    # night 1, through the command line: exactly the pushed instances land, as complete data sets
    out = CliRunner().invoke(
        app, ["fetch", orthanc.url, "--landing", str(landing), "--site", "site01",
              "--state-dir", str(state), "--night", "2024-05-01"],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "7 instances written" in out.output
    landed = _landed(landing, "site01", "2024-05-01")
    expected = _sop_uids(pushed)
    assert set(landed) == set(expected)
    assert all(dataset_equal(landed[sop], expected[sop]) for sop in expected)
    assert {p.parent.parent.name for p in landed.values()} == set(uids)
    assert not [p for p in landing.rglob("*") if p.name.startswith(".") and p.is_file()]

    # night 2: nothing new, nothing written
    second = fetch_new_studies(orthanc.url, landing, "site01", state, night="2024-05-02", fsync=False)
    assert second.protocol == "orthanc" and second.ok
    assert (second.studies_found, second.instances_written) == (0, 0)
    assert not (landing / "site01" / "2024-05-02").exists()

    # night 3: one more study pushed; only it arrives
    new_uid, new_files = write_study(tmp_path / "export", "CR", 2, tag="n3")
    orthanc.push(new_files)
    orthanc.wait_stable([new_uid])
    third = fetch_new_studies(orthanc.url, landing, "site01", state, night="2024-05-03", fsync=False)
    assert third.instances_written == 2
    assert set(_landed(landing, "site01", "2024-05-03")) == set(_sop_uids(new_files))

    # a full catch-up pass overlaps everything and writes nothing twice
    full = fetch_new_studies(
        orthanc.url, landing, "site01", state, night="2024-05-04", full=True, fsync=False
    )
    assert (full.studies_found, full.instances_written, full.instances_already_held) == (4, 0, 9)
    assert not (landing / "site01" / "2024-05-04").exists()

    # the site flow then finds the two fetched nights in the landing folder, once
    nights = scan_landing(landing, state)
    assert [(n.night, n.n_files, n.status) for n in nights] == [
        ("2024-05-01", 7, "new"),
        ("2024-05-03", 2, "new"),
    ]
    for night in nights:
        mark_processed(night, state)
    assert scan_landing(landing, state) == []


def test_dicomweb_qido_wado_fetches_by_study_date_window(orthanc: OrthancServer, tmp_path: Path) -> None:
    orthanc.clear()
    landing, state = tmp_path / "landing", tmp_path / "state"
    dicomweb = f"{orthanc.url}/dicom-web"
    _, old_files = write_study(tmp_path / "export", "MR", 3, study_date="20240105", tag="old")
    orthanc.push(old_files)

    first = fetch_new_studies(dicomweb, landing, "site01", state, night="2024-05-01", fsync=False)
    assert first.protocol == "dicomweb" and first.ok
    landed = _landed(landing, "site01", "2024-05-01")
    expected = _sop_uids(old_files)
    assert set(landed) == set(expected)
    assert all(dataset_equal(landed[sop], expected[sop]) for sop in expected)
    assert first.watermark_after == dt.date.today().isoformat()

    second = fetch_new_studies(dicomweb, landing, "site01", state, night="2024-05-02", fsync=False)
    assert (second.studies_found, second.instances_written) == (0, 0)

    # a study dated today is inside the window; one that arrives late with an old date is not (the
    # documented limit of QIDO-RS) until a --full pass
    today = dt.date.today().strftime("%Y%m%d")
    _, recent_files = write_study(tmp_path / "export", "CT", 2, study_date=today, tag="recent")
    _, late_files = write_study(tmp_path / "export", "DX", 1, study_date="20230301", tag="late")
    orthanc.push(recent_files + late_files)
    third = fetch_new_studies(dicomweb, landing, "site01", state, night="2024-05-03", fsync=False)
    assert set(_landed(landing, "site01", "2024-05-03")) == set(_sop_uids(recent_files))
    catch_up = fetch_new_studies(
        dicomweb, landing, "site01", state, night="2024-05-04", full=True, fsync=False
    )
    assert catch_up.instances_written == 1
    assert set(_landed(landing, "site01", "2024-05-04")) == set(_sop_uids(late_files))
    assert third.ok and catch_up.ok


def test_unreachable_source_exits_1_naming_the_url(tmp_path: Path) -> None:
    port = _free_port()
    out = CliRunner().invoke(
        app, ["fetch", f"http://127.0.0.1:{port}/dicom-web", "--landing", str(tmp_path), "--site",
              "site01", "--protocol", "dicomweb"],
    )  # fmt: skip
    assert out.exit_code == 1
    assert f"http://127.0.0.1:{port}/dicom-web/studies failed after 4 attempts" in out.output
    assert "check that the PACS is running" in out.output
    assert not list(tmp_path.rglob("*.dcm"))


def test_protocol_that_does_not_fit_the_url_is_a_clear_error(orthanc: OrthancServer, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"/studies answered HTTP 400: .*a DICOMweb root .* and --protocol"):
        fetch_new_studies(orthanc.url, tmp_path, "site01", tmp_path / "st", protocol="dicomweb")
    with pytest.raises(
        SourceError, match=r"/dicom-web/changes answered HTTP 404: not found; check the source"
    ):
        fetch_new_studies(f"{orthanc.url}/dicom-web", tmp_path, "site01", tmp_path / "st", protocol="orthanc")
    assert not list(tmp_path.rglob("*.dcm"))
