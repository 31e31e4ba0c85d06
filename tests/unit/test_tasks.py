"""Task bodies through ``.fn()`` (no Prefect run): each calls its stage, returns a PHI-free record."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.schemas.objects import State
from prefect.states import Completed, Failed

from cohortpool import tasks
from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.runconfig import KeyMismatchError, RunConfig, load_run_config
from cohortpool.synth import write_consortium
from cohortpool.warehouse import LoadError, WarehouseLockedError, checksum
from warehouse_batches import make_tables, write_batch


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sites, three patients each (site02 carries planted defects)."""
    root = tmp_path_factory.mktemp("landing")
    write_consortium(root, sites=2, max_patients=3)
    return root


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch) -> RunConfig:
    monkeypatch.setenv(
        "COHORTPOOL_SECRET", "09761540ca76ff29fad5ebdbf07d2cd623e872478267eb80419ae7556c08cbb5"
    )
    return load_run_config(require_key=True)


def _site01(landing: Path, layout: RunLayout) -> tasks.SiteNight:
    nights = tasks.scan_new_nights.fn(landing, layout.state).pending
    return next(n for n in nights if n.site_id == "site01")


def test_scan_finds_each_site_night_and_forgets_it_once_marked(landing: Path, tmp_path: Path) -> None:
    layout = RunLayout(tmp_path)
    nights = tasks.scan_new_nights.fn(landing, layout.state).pending
    assert [(n.site_id, n.status) for n in nights] == [("site01", "new"), ("site02", "new")]
    tasks.mark_night_processed.fn(nights[0], layout.state)
    assert [n.site_id for n in tasks.scan_new_nights.fn(landing, layout.state).pending] == ["site02"]


def test_submission_summary_counts_the_drop_and_holds_no_identifier(
    landing: Path, tmp_path: Path, config: RunConfig
) -> None:
    layout = RunLayout(tmp_path)
    night = next(n for n in tasks.scan_new_nights.fn(landing, layout.state).pending if n.site_id == "site02")
    out = layout.submission("site02", night.night)
    summary = tasks.build_submission.fn(
        night.path, out, layout.vault("site02"), "site02", night.night, night.content_sha256, "fp", config, 1
    )
    manifest = json.loads((out / "submission.json").read_text())
    assert summary.counts == manifest["counts"]
    assert (
        summary.counts["input_files"]
        == summary.counts["deidentified"] + summary.files_quarantined + (summary.counts["duplicate"])
    )
    assert summary.files_quarantined >= 1  # site02 has planted bad files
    assert sum(summary.reasons.values()) == summary.files_quarantined
    # the record goes into Prefect's cache and artifacts: no MRN or name from the drop may be in it
    clinical = (night.path / "clinical.csv").read_text().splitlines()[1:]
    identifiers = {cell for line in clinical for cell in line.split(",")[:2]}
    assert not any(value in repr(summary) for value in identifiers)


def test_the_nightly_task_and_cohortpool_deid_make_the_same_submission_bytes(
    landing: Path, tmp_path: Path, config: RunConfig
) -> None:
    from typer.testing import CliRunner

    from cohortpool.cli import app

    layout = RunLayout(tmp_path / "flow")
    night = next(n for n in tasks.scan_new_nights.fn(landing, layout.state).pending if n.site_id == "site02")
    flow_out = layout.submission("site02", night.night)
    tasks.build_submission.fn(
        night.path,
        flow_out,
        layout.vault("site02"),
        "site02",
        night.night,
        night.content_sha256,
        "fp",
        config,
        1,
    )
    cli_out = tmp_path / "cli" / "submission"
    done = CliRunner().invoke(
        app, ["deid", str(night.path), str(cli_out), "--site", "site02", "--vault", str(tmp_path / "v"),
              "--workers", "1"],
    )  # fmt: skip
    assert done.exit_code == 1, done.output  # site02's planted bad files are quarantined
    flow_files = {
        p.relative_to(flow_out).as_posix(): p.read_bytes() for p in flow_out.rglob("*") if p.is_file()
    }
    cli_files = {p.relative_to(cli_out).as_posix(): p.read_bytes() for p in cli_out.rglob("*") if p.is_file()}
    assert len(flow_files) > 10
    assert flow_files == cli_files


def test_validate_then_load_then_load_again_is_a_no_op(
    landing: Path, tmp_path: Path, config: RunConfig
) -> None:
    layout = RunLayout(tmp_path)
    night = _site01(landing, layout)
    out = layout.submission("site01", night.night)
    sub = tasks.build_submission.fn(
        night.path, out, layout.vault("site01"), "site01", night.night, night.content_sha256, "fp", config, 1
    )
    validated = tasks.validate_batch.fn(
        out, layout.validated("site01", night.night), "site01", night.night, sub.sha256, "fp"
    )
    assert validated.batch_id.startswith(f"site01_{night.night}_")
    for table in validated.tables.values():
        assert table["rows_in"] == table["accepted"] + table["quarantined"]
    assert validated.data_docs.is_file()
    first = tasks.load_into_warehouse.fn(layout.warehouse, validated.path, "site01")
    again = tasks.load_into_warehouse.fn(layout.warehouse, validated.path, "site01")
    assert (first.status, again.status) == ("loaded", "unchanged")
    assert first.rows["clinical"] == validated.tables["clinical"]["accepted"]
    assert tasks.warehouse_checksum.fn(layout.warehouse) == checksum(layout.warehouse)


def test_load_says_it_waits_for_another_run_holding_the_warehouse(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    batch = write_batch(tmp_path / "validated", "site01", "2025-03-01", make_tables("site01", 3, seed=1))
    db = tmp_path / "warehouse.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(db)!r}); print(1, flush=True); time.sleep(3)",
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"1"
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="cohortpool"):
            result = tasks.load_into_warehouse.fn(db, batch, "site01", wait_seconds=60)
    finally:
        holder.wait(timeout=30)
    assert result.status == "loaded" and result.waited_for_lock
    assert time.monotonic() - started >= 1.0
    assert "held by another run" in caplog.text


def test_only_io_errors_are_retried() -> None:
    def state(exc: BaseException) -> Failed:
        return Failed(data=exc)

    assert tasks._retry_on_io(None, None, state(WarehouseLockedError("locked")))  # type: ignore[arg-type]
    assert tasks._retry_on_io(None, None, state(OSError("disk")))  # type: ignore[arg-type]
    assert not tasks._retry_on_io(None, None, state(LoadError("bad cells")))  # type: ignore[arg-type]
    assert not tasks._retry_on_io(None, None, Completed(data=1))  # type: ignore[arg-type]


def test_submission_cache_key_changes_with_the_secret_and_never_shows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "COHORTPOOL_SECRET", "0847d7347ecd8020a6e6e9f26350d6039a1d4d1c877208238ec0187b123caba7"
    )
    first = load_run_config(require_key=True).site_fingerprint()
    assert first == load_run_config(require_key=True).site_fingerprint()
    monkeypatch.setenv(
        "COHORTPOOL_SECRET", "fc0dfba5e5c39872279404580e1741b75f729475c550bec1b99b90dc96fef014"
    )
    second = load_run_config(require_key=True)
    assert second.site_fingerprint() != first
    assert (
        "fc0dfba5e5c39872279404580e1741b75f729475c550bec1b99b90dc96fef014"
        not in second.site_fingerprint() + second.model_dump_json()
    )


def test_a_worker_holding_another_key_than_the_run_refuses_to_work(
    landing: Path, tmp_path: Path, config: RunConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = RunLayout(tmp_path)
    night = _site01(landing, layout)
    monkeypatch.setenv(
        "COHORTPOOL_SECRET", "78006fcb21c72ea613243142e82bab7314ecedfb4402abde11b3917932e77ead"
    )
    out = layout.submission("site01", night.night)
    # an expected failure ends the task run Failed with one line (no traceback); its future raises it
    state = tasks.build_submission.fn(
        night.path, out, layout.vault("site01"), "site01", night.night, night.content_sha256, "fp", config
    )
    assert isinstance(state, State) and state.is_failed()
    assert isinstance(state.data, KeyMismatchError) and str(config.key_fingerprint) in str(state.data)
    assert state.message is not None and state.message.startswith("de-identify failed: KeyMismatchError: ")
    assert "\n" not in state.message
    with pytest.raises(KeyMismatchError):
        state.result()
    assert not out.exists() and not layout.vault("site01").exists()  # refused before writing anything


def test_a_bug_is_not_an_expected_failure(landing: Path, tmp_path: Path, config: RunConfig) -> None:
    """Only the composition layer's expected failures become a Failed state; anything else raises."""
    layout = RunLayout(tmp_path)
    night = _site01(landing, layout)
    with pytest.raises(TypeError):
        tasks.build_submission.fn(
            night.path, layout.submission("site01", night.night), layout.vault("site01"), "site01",
            night.night, night.content_sha256, "fp", config, "two",  # workers must be an int
        )  # fmt: skip


def test_cache_is_refreshed_only_when_the_output_is_gone(tmp_path: Path) -> None:
    output = tmp_path / "summary.json"
    assert tasks.cache_refresh(tasks.validate_batch, output).refresh_cache is True
    output.write_text("{}")
    assert tasks.cache_refresh(tasks.validate_batch, output) is tasks.validate_batch


def test_cached_tasks_hash_paths_and_checksums_but_not_worker_count() -> None:
    policy = tasks.build_submission.cache_policy
    assert "workers" in repr(policy) and "Inputs" in repr(policy)
    assert tasks.load_into_warehouse.cache_policy is not None
    assert "_None" in type(tasks.load_into_warehouse.cache_policy).__name__
