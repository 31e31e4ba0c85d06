"""Prefect tasks: thin wrappers, each a call into one stage, with the orchestration policy beside it.

This is the only module of the package that imports Prefect (``flows/`` composes these tasks). The
policy, in one place:

- retries with exponential backoff only on I/O (PACS, file system scans, the warehouse lock);
  de-identification and validation are deterministic, so a retry would fail the same way;
- caching keyed on input content: the cached tasks take paths plus a content checksum (the drop's or
  the submission's sha256) and a fingerprint of the code and configuration, and Prefect's ``INPUTS``
  policy hashes exactly those; no connection or DataFrame ever is an input. Results are small PHI-free
  records persisted under the run's output folder (``RunLayout.results``), so deleting the output folder
  deletes the cache with it, and :func:`cache_refresh` re-runs a step whose outputs were removed;
- timeouts on the steps the flow runs in its own thread (scan, load, checksum, cross-site checks), sized
  for a large night; the submitted steps (fetch, de-identify, validate) run in worker threads, where a
  Prefect timeout cannot interrupt a blocking call (Prefect warns so), and bound their own waits instead
  (the PACS client's per-request timeout and retries);
- artifacts: a markdown summary of the night and a table of quarantined counts per site, counts only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from prefect.client.schemas.objects import State, TaskRun
from prefect.exceptions import MissingContextError
from prefect.tasks import Task, exponential_backoff

from cohortpool import __version__
from cohortpool.config import load_settings
from cohortpool.deid import QUARANTINED
from cohortpool.features import ReleaseBlockedError
from cohortpool.ingest import (
    FetchResult,
    LandingScan,
    SiteNight,
    fetch_new_studies,
    mark_processed,
    scan_sites,
)
from cohortpool.nightly import LoadSummary, NightSummary, SubmissionSummary, ValidationSummary
from cohortpool.nightly.analyze import generate
from cohortpool.nightly.package import package_site_night
from cohortpool.report.exports import escape_formula
from cohortpool.validate import validate_submission
from cohortpool.validate.distribution import compare_sites
from cohortpool.warehouse import WarehouseLockedError, checksum, load_batch

HOUR = 3600
#: cached steps: the inputs (paths, checksums, fingerprint) and this module's source
CACHED = (INPUTS - "workers") + TASK_SOURCE


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger (its lines reach the Prefect API); a plain logger when a body runs via ``.fn()``."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


def _retry_on_io(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a lock conflict or an OS-level I/O error; bad data fails at once (a retry cannot fix it)."""
    try:
        state.result()
    except (WarehouseLockedError, OSError):
        return True
    except Exception:
        return False
    return False


def submission_fingerprint() -> str:
    """What, besides the drop's content, decides a submission: code version, options and the secret.

    The secret enters as a keyed digest of a constant, so a new consortium secret invalidates the cache
    and the cache key reveals nothing about it.
    """
    settings = load_settings()
    secret_id = hmac.new(settings.secret_bytes(), b"cohortpool task cache", hashlib.sha256).hexdigest()
    parts = {
        "version": __version__,
        "secret": secret_id,
        "deid": settings.deid.model_dump(),
        "min_k": settings.min_k_anonymity,  # a new minimum re-checks every night's release
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def validation_fingerprint() -> str:
    """What, besides the submission's content, decides a validated batch: the code version (the hub
    holds no secret)."""
    return hashlib.sha256(f"cohortpool {__version__} validate".encode()).hexdigest()


def plan_sha256(plan_path: Path) -> str:
    """The analysis plan's identity (any edit to the plan changes the report)."""
    return _sha256(plan_path)


def cache_refresh(task_: Task[Any, Any], output: Path) -> Task[Any, Any]:
    """The task, told to recompute and overwrite its cache entry when its output file is gone.

    A cache hit returns the stored summary without running, which would leave a deleted output folder
    missing; this keeps "a re-run skips finished work" true only while the work is still on disk.
    """
    return task_ if output.exists() else task_.with_options(refresh_cache=True)


def log_step(
    step: str, site_id: str, night: str, message: str, level: int = logging.INFO, total: int | None = None
) -> None:
    """Log a finished step of a site-night from the flow; the CLI's progress bar counts these records.

    ``total`` (on the scan step) is how many steps the run will take, so the bar can size itself.
    """
    extra = {"cohortpool_step": step, "cohortpool_total": total}
    _logger().log(level, "%s %s: %s", site_id, night, message, extra=extra)


@task(
    name="scan-landing",
    retries=2,
    retry_delay_seconds=exponential_backoff(2),
    timeout_seconds=HOUR,
    cache_policy=NO_CACHE,
)
def scan_new_nights(landing: Path, state_dir: Path, configured: tuple[str, ...] = ()) -> LandingScan:
    """Every site-night in the landing folder that is new or re-delivered since it was processed, and
    the configured sites whose folder is missing or unreadable (failed, not idle)."""
    return scan_sites(landing, state_dir, configured=configured)


@task(
    name="fetch-studies",
    task_run_name="fetch-studies-{site_id}",
    retries=3,
    retry_delay_seconds=exponential_backoff(10),
    retry_condition_fn=_retry_on_io,
    cache_policy=NO_CACHE,
)
def fetch_studies(source_url: str, landing: Path, site_id: str, state_dir: Path) -> FetchResult:
    """Pull what the site's PACS has new since its watermark into the landing folder, within the
    night's time budget (``Settings.fetch_budget_minutes``)."""
    budget = load_settings().fetch_budget_minutes * 60
    return fetch_new_studies(source_url, landing, site_id, state_dir, budget_seconds=budget)


@task(
    name="build-submission",
    task_run_name="build-submission-{site_id}-{night}",
    cache_policy=CACHED,
    persist_result=True,
)
def build_submission(
    drop: Path,
    submission_dir: Path,
    vault_dir: Path,
    site_id: str,
    night: str,
    content_sha256: str,
    fingerprint: str,
    workers: int = 1,
) -> SubmissionSummary:
    """De-identify a site drop, pseudonymise its tables and package the submission (site edge)."""
    return _package_site_night(drop, submission_dir, vault_dir, site_id, night, workers)


def _package_site_night(
    drop: Path, submission_dir: Path, vault_dir: Path, site_id: str, night: str, workers: int
) -> SubmissionSummary:
    settings = load_settings()
    packaged = package_site_night(
        drop,
        submission_dir,
        vault_dir,
        site_id,
        night,
        settings,
        settings.secret_bytes(),
        workers=workers,
        progress=_pause_midway("deidentify"),
    )
    counts, privacy = packaged.counts, packaged.privacy
    _logger().info(
        "%s %s: %d files, %d de-identified, %d quarantined; k-anonymity %d (minimum %d)",
        site_id,
        night,
        counts["input_files"],
        counts["deidentified"],
        packaged.deid.count(QUARANTINED),
        privacy.k,
        privacy.min_k,
    )
    if privacy.blocked:  # withheld at the site: the hub never sees it; the night fails with the reason
        raise ReleaseBlockedError(f"{site_id} {night}: {privacy.reason()}")
    return SubmissionSummary(
        site_id,
        night,
        submission_dir,
        _sha256(packaged.manifest),
        counts,
        packaged.deid.reasons,
        packaged.table_error,
    )


def _test_pause(step: str) -> None:
    """Sleep at ``step`` when the hardening tests ask for it (``Settings.test_pause_at``), never otherwise."""
    settings = load_settings()
    if settings.test_pause_at == step and settings.test_pause_seconds > 0:
        _logger().warning("test pause at %s for %.0f s", step, settings.test_pause_seconds)
        time.sleep(settings.test_pause_seconds)


def _pause_midway(step: str) -> Callable[[int, int], None] | None:
    """A ``progress(done, total)`` callback that runs :func:`_test_pause` once, the first time some but
    not all of the work is done, so a test's SIGKILL lands inside the step (de-identification: part of
    ``dicom/`` placed, the workers' staging folder present); None unless a test asked to pause there."""
    if load_settings().test_pause_at != step:
        return None
    paused = False

    def progress(done: int, total: int) -> None:
        nonlocal paused
        if not paused and 0 < done < total:
            paused = True
            _test_pause(step)

    return progress


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@task(name="find-submissions", retries=2, retry_delay_seconds=exponential_backoff(2), cache_policy=NO_CACHE)
def find_submissions(root: Path) -> list[SubmissionSummary]:
    """Every submission under ``root/<site>/<night>/`` (what sites uploaded to the hub)."""
    found = []
    for manifest in sorted(root.glob("*/*/submission.json")):
        facts = json.loads(manifest.read_text(encoding="utf-8"))
        found.append(
            SubmissionSummary(
                facts["site_id"], facts["night"], manifest.parent, _sha256(manifest), facts["counts"], {}
            )
        )
    return found


@task(
    name="validate-submission",
    task_run_name="validate-submission-{site_id}-{night}",
    cache_policy=CACHED,
    persist_result=True,
)
def validate_batch(
    submission_dir: Path,
    validated_dir: Path,
    site_id: str,
    night: str,
    submission_sha256: str,
    fingerprint: str,
) -> ValidationSummary:
    """Validate one submission into a batch: accepted rows, quarantine, warnings, Data Docs (hub)."""
    # a test's pause lands once the first table of the batch is written, before the batch is final
    outcome = validate_submission(submission_dir, validated_dir, progress=_pause_midway("validate"))
    tables = {
        name: {
            "rows_in": t.rows_in,
            "accepted": t.accepted,
            "quarantined": t.quarantined,
            "warnings": t.warnings,
            "rejected": t.rejected,
        }
        for name, t in outcome.tables.items()
    }
    return ValidationSummary(outcome.site_id, outcome.night, outcome.batch_id, outcome.out_dir, tables)


@task(
    name="load-batch",
    task_run_name="load-batch-{site_id}",
    retries=2,
    retry_delay_seconds=exponential_backoff(5),
    retry_condition_fn=_retry_on_io,
    timeout_seconds=2 * HOUR,
    cache_policy=NO_CACHE,
)
def load_into_warehouse(
    db_path: Path, validated_dir: Path, site_id: str, wait_seconds: float = 600.0
) -> LoadSummary:
    """Load a validated batch; if another run holds the warehouse, say so and wait for it."""
    waited = False
    settings = load_settings()
    pause = settings.test_pause_seconds if settings.test_pause_at == "load" else 0.0
    try:
        result = load_batch(db_path, validated_dir, pause_before_commit=pause)
    except WarehouseLockedError:
        waited = True
        _logger().warning(
            "warehouse %s is held by another run (DuckDB allows one writer): waiting up to %.0f s for it",
            db_path,
            wait_seconds,
        )
        result = load_batch(db_path, validated_dir, wait_seconds=wait_seconds)
    return LoadSummary(
        result.site_id,
        result.batch_id,
        result.status,
        result.load_seq,
        dict(result.rows),
        result.superseded,
        waited,
        result.late_rows,
    )


@task(name="compare-sites", cache_policy=NO_CACHE, timeout_seconds=HOUR)
def compare_site_distributions(validated_root: Path, out_csv: Path) -> int:
    """Cross-site distribution warnings over each site's latest accepted clinical rows; returns how many."""
    latest = {
        d.name: sorted(n for n in d.iterdir() if (n / "summary.json").is_file())
        for d in validated_root.iterdir()
        if d.is_dir()
    }
    frames = {
        site: pd.read_parquet(nights[-1] / "accepted" / "clinical.parquet")
        for site, nights in latest.items()
        if nights
    }
    warnings = compare_sites(frames)
    warnings.map(escape_formula).to_csv(out_csv, index=False, lineterminator="\n")
    return len(warnings)


@task(
    name="mark-processed",
    task_run_name="mark-processed-{site_night.site_id}-{site_night.night}",
    retries=2,
    retry_delay_seconds=exponential_backoff(2),
    cache_policy=NO_CACHE,
)
def mark_night_processed(site_night: SiteNight, state_dir: Path) -> None:
    """Record the night as done, so the next run does not take the same content again."""
    mark_processed(site_night, state_dir)


@task(
    name="warehouse-checksum",
    retries=2,
    retry_delay_seconds=exponential_backoff(2),
    retry_condition_fn=_retry_on_io,
    cache_policy=NO_CACHE,
)
def warehouse_checksum(db_path: Path) -> str:
    """The content checksum of the analysis views (provenance of the report)."""
    return checksum(db_path, wait_seconds=60.0)


@task(name="write-report", cache_policy=CACHED, persist_result=True, timeout_seconds=HOUR)
def write_consortium_report(
    db_path: Path,
    report_dir: Path,
    plan_path: Path,
    warehouse_sha256: str,
    plan_sha256: str,
    threshold: int,
) -> Path | None:
    """Run the analysis plan on the warehouse and write the report folder (None: no patients yet).

    Cached on the warehouse's content checksum and the plan's sha256: a night that loaded nothing new
    does not recompute the same report.
    """
    # `generate` is the glue of `cohortpool report` (warehouse -> stats -> report: stages that may not
    # import each other); the flow and the CLI write the same bytes through it.
    files = generate(
        db_path,
        report_dir,
        plan_path,
        threshold=threshold,
        warehouse_sha256=warehouse_sha256,
        plan_sha256=plan_sha256,
    )
    if files is None:
        _logger().warning("the warehouse holds no patients yet: no report written")
        return None
    return files.html.parent


@task(name="publish-night-summary", cache_policy=NO_CACHE)
def publish_night_summary(summary: NightSummary) -> None:
    """The night's markdown summary and the quarantined counts per site, as Prefect artifacts."""
    create_markdown_artifact(
        key="nightly-summary", markdown=summary.markdown(), description="cohortpool nightly run"
    )
    create_table_artifact(
        key="quarantine-by-site",
        table=summary.quarantine_rows(),
        description="Files and rows quarantined per site-night (counts only)",
    )
