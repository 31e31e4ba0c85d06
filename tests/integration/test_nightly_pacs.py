"""A site's PACS down during the nightly run: that site fails with the reason, the others complete, and
the next run, with the PACS back, fetches what it missed (real Orthanc on loopback, real Prefect)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pydicom
import pytest
from orthanc_server import OrthancServer, free_port
from prefect_support import run_logs
from pydicom.uid import generate_uid

from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.records import NightSummary, summary_of
from cohortpool.synth import write_consortium
from ingest_testdata import HOSTILE_PHI, write_hostile_instance

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("prefect")]
NIGHT = "2025-03-01"


def _summary(state: Any) -> NightSummary:
    summary = summary_of(state.result(raise_on_failure=False))  # a failed night carries it too
    assert summary is not None, state
    return summary


def _sites(monkeypatch: pytest.MonkeyPatch, site01_url: str) -> None:
    sites = [{"site_id": "site01", "dicomweb_url": site01_url}, {"site_id": "site02"}, {"site_id": "site03"}]
    monkeypatch.setenv("COHORTPOOL_SITES", json.dumps(sites))


def test_an_unreachable_pacs_fails_its_site_the_others_complete_and_the_next_run_catches_up(
    orthanc: OrthancServer,
    run_nightly: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    synth = tmp_path / "synth"
    write_consortium(synth, sites=3, max_patients=3)
    landing = tmp_path / "landing"
    (landing / "site01").mkdir(parents=True)  # site01 sends through its PACS only
    (landing / "site02").mkdir()  # idle tonight
    shutil.copytree(synth / "site03" / NIGHT, landing / "site03" / NIGHT)
    layout = RunLayout(tmp_path / "out")

    _sites(monkeypatch, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    state = run_nightly(landing, layout.out)
    assert state.is_failed()
    summary = _summary(state)
    by_site = {o.site_id: o for o in summary.outcomes}
    assert (by_site["site01"].failed_step, by_site["site01"].error) == ("fetch", "SourceError")
    assert "check that the PACS is running" in (by_site["site01"].detail or "")
    assert by_site["site03"].load is not None and by_site["site03"].load.status == "loaded"
    assert summary.hub_error is None, summary.hub_detail
    assert (layout.report / "report.html").is_file()
    assert "failed at fetch" in summary.markdown()
    # an expected failure: one line in the task run's log and the run's state, no traceback
    assert (state.message or "").startswith("failed: site01 at fetch (SourceError); ")
    logs = run_logs(state)
    assert any("fetch failed: SourceError: " in line for line in logs), logs
    assert not any("Traceback" in line or "Unexpected result" in line for line in logs), logs

    orthanc.clear()
    files = sorted((synth / "site01" / NIGHT / "dicom").rglob("*.dcm"))
    orthanc.push(files)
    studies = {str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID) for f in files}
    orthanc.wait_stable(sorted(studies))
    _sites(monkeypatch, orthanc.url)  # the PACS is back for the next night
    summary = _summary(run_nightly(landing, layout.out))
    (caught_up,) = summary.outcomes
    assert caught_up.site_id == "site01" and caught_up.failed_step is None
    assert caught_up.submission is not None
    assert caught_up.submission.counts["input_files"] == len(files)
    assert caught_up.submission.counts["deidentified"] == len(files)
    assert caught_up.load is not None and caught_up.load.status == "loaded"


def test_an_unusable_instance_in_the_pacs_is_a_warning_not_a_failed_site(
    orthanc: OrthancServer,
    run_nightly: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The site's good studies go through; the refusal is one warning line, naming no PHI, and the night
    exits 1 (done, with input refused), its headline saying so."""
    synth = tmp_path / "synth"
    write_consortium(synth, sites=1, max_patients=2)
    landing = tmp_path / "landing"
    (landing / "site01").mkdir(parents=True)
    files = sorted((synth / "site01" / NIGHT / "dicom").rglob("*.dcm"))
    study_uid, series_uid = generate_uid(), generate_uid()
    bad = write_hostile_instance(tmp_path / "export" / "bad.dcm", study_uid, series_uid)
    orthanc.clear()
    orthanc.push([*files, bad])
    studies = {str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID) for f in files}
    orthanc.wait_stable([*sorted(studies), study_uid])
    monkeypatch.setenv("COHORTPOOL_SITES", json.dumps([{"site_id": "site01", "dicomweb_url": orthanc.url}]))

    state = run_nightly(landing, RunLayout(tmp_path / "out").out)
    summary = _summary(state)
    (outcome,) = summary.outcomes
    assert outcome.failed_step is None, outcome.detail
    assert summary.fetch_refused == {"site01": 1}
    assert "1 PACS instance(s) refused at fetch" in summary.headline()
    assert summary.exit_code == 1
    assert outcome.submission is not None and outcome.submission.counts["input_files"] == len(files)
    logs = run_logs(state)
    refused = [line for line in logs if "1 instance(s) refused as unusable: refused http://" in line]
    assert len(refused) == 1 and "--retry-refused" in refused[0], logs
    assert not any(part in line for line in logs for part in HOSTILE_PHI), logs
