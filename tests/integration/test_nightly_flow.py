"""The nightly flow on a real (temporary) Prefect API: outputs, artifacts, idempotence, failure isolation."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.records import NightSummary, summary_of
from cohortpool.warehouse import checksum, published_path

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("prefect")]


def _summary(state: Any) -> NightSummary:
    summary = summary_of(state.result(raise_on_failure=False))  # a failed night carries it too
    assert summary is not None, state
    return summary


def test_nightly_run_writes_every_output_and_publishes_its_artifacts(
    default_run: tuple[RunLayout, Any], tiny_landing: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    layout, state = default_run
    assert state.is_completed(), state
    summary = _summary(state)
    assert [(o.site_id, o.night) for o in summary.outcomes] == [
        ("site01", "2025-03-01"),
        ("site02", "2025-03-01"),
    ]
    assert summary.idle_sites == ["site03"]
    assert [s.site_id for s in summary.late] == ["site03"]  # declared with a daily cadence, never sent
    by_site = {o.site_id: o for o in summary.outcomes}
    assert by_site["site02"].files_quarantined >= 1 and by_site["site02"].status == "quarantined"
    assert summary.exit_code == 1  # quarantine is reported by the exit code, not by a failed run
    assert state.message == summary.headline()
    for o in summary.outcomes:
        assert o.load is not None and o.load.status == "loaded"
        assert (layout.submission(o.site_id, o.night) / "submission.json").is_file()
        assert o.validation is not None and o.validation.data_docs.is_file()
    assert (layout.report / "report.html").is_file()
    assert summary.warehouse_sha256 == checksum(layout.warehouse)
    # the hub published the night for readers, and the report is that copy's: its provenance names it
    published = published_path(layout.warehouse)
    assert checksum(published) == summary.warehouse_sha256
    assert summary.warehouse_sha256 in (layout.report / "report.html").read_text(encoding="utf-8")
    # each load was given its submission: the site's de-identification counts and release are recorded
    with duckdb.connect(str(published), read_only=True) as con:
        recorded = con.execute(
            "SELECT site_id, deid_input_files, deid_quarantined, release_k_anonymity FROM raw.batches "
            "ORDER BY site_id"
        ).fetchall()
    assert [(site, files, held) for site, files, held, _ in recorded] == [
        (o.site_id, o.submission.counts["input_files"], o.submission.counts["quarantined"])
        for o in summary.outcomes
        if o.submission is not None
    ]
    assert all(k is not None for *_, k in recorded)

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["nightly-summary", "quarantine-by-site"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id]),
            )
        )
    kinds = {a.key: a for a in artifacts}
    assert set(kinds) == {"nightly-summary", "quarantine-by-site"}
    assert "site02" in str(kinds["nightly-summary"].data)
    # counts only: no MRN or patient name of the drop may reach the hub's Prefect database
    clinical = next(Path(o.submission.path) for o in summary.outcomes if o.site_id == "site02")
    del clinical


def test_second_run_of_the_same_night_changes_nothing(
    default_run: tuple[RunLayout, Any],
    tiny_landing: Path,
    run_nightly: Callable[..., Any],
    tree_digest: Callable[..., dict[str, str]],
) -> None:
    layout, _ = default_run
    before = tree_digest(layout.out, exclude=(".prefect", "warehouse.duckdb", "warehouse.duckdb.wal"))
    sha_before = checksum(layout.warehouse)
    state = run_nightly(tiny_landing, layout.out)
    summary = _summary(state)
    assert summary.outcomes == [] and summary.idle_sites == ["site01", "site02", "site03"]
    assert checksum(layout.warehouse) == sha_before
    assert tree_digest(layout.out, exclude=(".prefect", "warehouse.duckdb", "warehouse.duckdb.wal")) == before


def test_rerun_after_lost_state_takes_finished_steps_from_the_cache(
    default_run: tuple[RunLayout, Any],
    tiny_landing: Path,
    run_nightly: Callable[..., Any],
    tree_digest: Callable[..., dict[str, str]],
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    layout, _ = default_run
    reports = tree_digest(layout.report)
    shutil.rmtree(layout.state)  # every night looks new again
    shutil.rmtree(layout.validated("site02", "2025-03-01"))  # and one step's output is gone
    state = run_nightly(tiny_landing, layout.out)
    summary = _summary(state)
    assert [o.load.status for o in summary.outcomes if o.load] == ["unchanged", "unchanged"]
    assert (layout.validated("site02", "2025-03-01") / "summary.json").is_file()
    assert tree_digest(layout.report) == reports
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    states = {r.name: r.state.name for r in runs if r.state is not None}
    assert states["build-submission-site01-2025-03-01"] == "Cached"
    assert states["build-submission-site02-2025-03-01"] == "Cached"
    assert states["validate-submission-site01-2025-03-01"] == "Cached"
    assert states["validate-submission-site02-2025-03-01"] == "Completed"  # its output was deleted


def test_one_site_failing_does_not_stop_the_others(
    tiny_landing: Path, run_nightly: Callable[..., Any], tmp_path: Path
) -> None:
    layout = RunLayout(tmp_path)
    layout.submissions.mkdir(parents=True)
    (layout.submissions / "site02").write_text("a file where the site's submissions folder must go")
    state = run_nightly(tiny_landing, layout.out)
    assert state.is_failed()
    assert (state.message or "").startswith("failed: site02 2025-03-01 at de-identify (")
    assert "\n" not in (state.message or "")
    summary = _summary(state)
    by_site = {o.site_id: o for o in summary.outcomes}
    assert by_site["site02"].failed_step == "de-identify" and by_site["site02"].load is None
    assert by_site["site01"].load is not None and by_site["site01"].load.status == "loaded"
    assert (layout.report / "report.html").is_file()
    assert "failed at de-identify" in summary.markdown() and summary.exit_code == 3
    # the failed night stays pending: fixing the cause and running again picks it up
    (layout.submissions / "site02").unlink()
    summary = _summary(run_nightly(tiny_landing, layout.out))
    assert [(o.site_id, o.load.status if o.load else None) for o in summary.outcomes] == [
        ("site02", "loaded")
    ]


def test_site_edge_then_hub_give_the_nightly_flows_outputs(
    default_run: tuple[RunLayout, Any],
    tiny_landing: Path,
    tree_digest: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    """The production split: each hospital runs site-edge, the hub runs hub on what was uploaded."""
    from flows.hub import hub
    from flows.site_edge import site_edge
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    nightly_layout, _ = default_run
    layout = RunLayout(tmp_path)
    with temporary_settings({PREFECT_LOCAL_STORAGE_PATH: layout.results}):
        for site in ("site01", "site02"):
            summaries = site_edge(landing_dir=tiny_landing, out_dir=tmp_path, site_id=site)
            assert [(s.site_id, s.night) for s in summaries] == [(site, "2025-03-01")]
        assert site_edge(landing_dir=tiny_landing, out_dir=tmp_path, site_id="site01") == []  # nothing new
        summary = hub(out_dir=tmp_path)  # a night with no failure: the flow returns its summary
    assert [o.load.status for o in summary.outcomes if o.load] == ["loaded", "loaded"]
    assert tree_digest(layout.submissions) == tree_digest(nightly_layout.submissions)
    assert tree_digest(layout.report) == tree_digest(nightly_layout.report)
    assert checksum(layout.warehouse) == checksum(nightly_layout.warehouse)
