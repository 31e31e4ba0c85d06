"""Fetching from a real Orthanc on loopback: exactly the pushed studies, then nothing, then only the new.

One Orthanc per test session (it starts in about a second); every test empties it first, so the tests
do not depend on each other's order. Studies are pushed with dcmtk's ``storescu``, as a modality would.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from orthanc_server import OrthancServer, free_port
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.ingest import SourceError, fetch_new_studies, mark_processed, scan_landing
from ingest_testdata import dataset_equal, write_study

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("orthanc")]


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


def test_unreachable_source_exits_3_naming_the_url(tmp_path: Path) -> None:
    """The stage failed (the README's exit-code contract: 3), nothing was refused (1)."""
    port = free_port()
    out = CliRunner().invoke(
        app, ["fetch", f"http://127.0.0.1:{port}/dicom-web", "--landing", str(tmp_path), "--site",
              "site01", "--protocol", "dicomweb"],
    )  # fmt: skip
    assert out.exit_code == 3
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
