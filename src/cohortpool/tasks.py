"""Prefect tasks: names, retries, caching and artifacts around the composition layer.

This and ``flows/`` are the only modules that import Prefect; every task body is one call into
:mod:`cohortpool.pipeline`, which the CLI calls too. The policy, in one place:

- retries with exponential backoff only on I/O (PACS, file system scans, the warehouse lock);
  de-identification and validation are deterministic, so a retry would fail the same way;
- caching keyed on input content: the cached tasks take paths plus a content checksum (the drop's or
  the submission's sha256) and a fingerprint of the run configuration (:class:`RunConfig`), and
  Prefect's ``INPUTS`` policy hashes exactly those, never the configuration object or a connection.
  Results are small PHI-free records persisted under the run's output folder (``RunLayout.results``),
  so deleting the output folder deletes the cache with it, and :func:`cache_refresh` re-runs a step
  whose outputs were removed;
- no Prefect timeouts: every task body is synchronous, and Prefect 3 runs a synchronous task in a worker
  thread, where its timeout cannot interrupt a blocking call (it fires only after the call returns, and
  Prefect logs a warning for every such task of every night). Each step bounds its own waits instead:
  the PACS client's per-request timeout and retries, the warehouse lock's ``wait_seconds``, the push's
  time budget; a run that must stop is stopped by Ctrl-C or a signal (exit 130, run lock released);
- artifacts: a markdown summary of the night and a table of its counts per site-night, counts only;
- expected failures (a release withheld below the minimum k, a PACS that cannot be reached, a key the
  run or the registry does not expect, a full disk) end the task run Failed with a one-line message and
  no traceback (:func:`expected_failures`); the flow gets the exception back from the future and records
  it. A traceback is kept for what nobody expected: a bug.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from prefect.client.schemas.objects import State, TaskRun
from prefect.exceptions import MissingContextError
from prefect.states import Failed
from prefect.tasks import Task, exponential_backoff

from cohortpool.contract.files import sha256_file
from cohortpool.pipeline import hub, report, site, transfer
from cohortpool.pipeline.records import LoadSummary, NightSummary, SubmissionSummary, ValidationSummary
from cohortpool.pipeline.runconfig import RunConfig
from cohortpool.pipeline.site import FetchResult, LandingScan, SiteNight
from cohortpool.pipeline.transfer import PushSummary, ReceiveSummary

P = ParamSpec("P")
R = TypeVar("R")
#: cached steps: the inputs (paths, checksums, fingerprint) and this module's source; the configuration
#: object enters through its fingerprint only, and the worker count never changes a result
CACHED = (INPUTS - "workers" - "config") + TASK_SOURCE
#: the hub's verification: once per submission version (its submission.json's sha256 names every file's);
#: the configuration only says whether the seal is checked, on a version's first verification
VERIFIED_ONCE = (INPUTS - "submission" - "config") + TASK_SOURCE


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger (its lines reach the Prefect API); a plain logger when a body runs via ``.fn()``."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


class _NoEmptyTraceback(logging.Filter):
    """Prefect logs a task run's failure with ``exc_info=True`` also when the task returned its Failed
    state rather than raising; with no exception in flight that prints a stray ``NoneType: None`` line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[0] is None:
            record.exc_info = None
        return True


# the task runs' logger, wherever the tasks run (a Dask worker imports this module, not the flow)
logging.getLogger("prefect.task_runs").addFilter(_NoEmptyTraceback())


def expected_failures(step: str, *also: type[Exception]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Turn the composition layer's expected failures (:data:`cohortpool.pipeline.site.EXPECTED_FAILURES`)
    (and the step's own, ``also``) into the task run's Failed state, with the one-line message
    ``<step> failed: <Error>: <why>``.

    Prefect makes a returned state the run's final state and logs it in one line; the future's
    ``result()`` raises the exception again, so the flow records it like any failure. Raising instead
    would print the whole traceback for something that is the data's or the configuration's doing.
    """

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def body(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except (*site.EXPECTED_FAILURES, *transfer.TRANSFER_FAILURES, *also) as exc:
                why = " ".join(str(exc).split())
                # the caller never sees the state as a value: the future raises `exc` from it
                return cast(R, Failed(message=f"{step} failed: {type(exc).__name__}: {why}", data=exc))

        return body

    return wrap


def _retry_on_io(task: Task[Any, Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Retry a lock conflict or an OS-level I/O error; bad data fails at once (a retry cannot fix it)."""
    try:
        state.result()
    except (hub.WarehouseLockedError, OSError):
        return True
    except Exception:
        return False
    return False


#: a step that writes the hub's files or warehouse: retried twice on a lock conflict or an I/O error
#: (:func:`_retry_on_io`), never cached (it acts on what is there now)
_IO_STEP: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": exponential_backoff(5),
    "retry_condition_fn": _retry_on_io,
    "cache_policy": NO_CACHE,
}


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
    cache_policy=NO_CACHE,
)
def scan_new_nights(landing: Path, state_dir: Path, configured: tuple[str, ...] = ()) -> LandingScan:
    """Every site-night in the landing folder that is new or re-delivered since it was processed, and
    the configured sites whose folder is missing or unreadable (failed, not idle)."""
    return site.scan_sites(landing, state_dir, configured=configured)


@task(
    name="fetch-studies",
    task_run_name="fetch-studies-{site_id}",
    retries=3,
    retry_delay_seconds=exponential_backoff(10),
    retry_condition_fn=_retry_on_io,
    cache_policy=NO_CACHE,
)
@expected_failures("fetch")
def fetch_studies(
    source_url: str, landing: Path, site_id: str, state_dir: Path, budget_seconds: float
) -> FetchResult:
    """Pull what the site's PACS has new since its watermark into the landing folder, within the
    night's time budget (``Settings.fetch_budget_minutes``)."""
    return site.fetch_new_studies(source_url, landing, site_id, state_dir, budget_seconds=budget_seconds)


def refused_line(result: FetchResult) -> str:
    """One log line for the instances a fetch refused (their reasons name no UID)."""
    shown = "; ".join(result.refused[:3])
    more = f" (and {len(result.refused) - 3} more)" if len(result.refused) > 3 else ""
    return f"{len(result.refused)} instance(s) refused as unusable: {shown}{more}"


@task(
    name="build-submission",
    task_run_name="build-submission-{site_id}-{night}",
    cache_policy=CACHED,
    persist_result=True,
)
@expected_failures("de-identify")
def build_submission(
    drop: Path,
    submission_dir: Path,
    vault_dir: Path,
    site_id: str,
    night: str,
    content_sha256: str,
    fingerprint: str,
    config: RunConfig,
    workers: int = 1,
) -> SubmissionSummary:
    """De-identify a site drop, pseudonymise its tables and package the submission (site edge)."""
    return site.build_submission(drop, submission_dir, vault_dir, site_id, night, config, workers=workers)


@task(
    name="push-submissions",
    task_run_name="push-submissions",
    cache_policy=NO_CACHE,
)
@expected_failures("push")
def push_submissions(outbox: Path, dest: str, site_id: str) -> PushSummary:
    """Push every submission of the site in its outbox not yet at ``dest`` (the hub's inbox); what cannot
    be pushed stays queued for the next run. Retries are the pusher's own (reconnect and resume, with
    backoff, within a time budget), not Prefect's."""
    return transfer.push_outbox(outbox, dest, site_id)


@task(
    name="receive-submissions",
    **_IO_STEP,
)
def receive_submissions(
    inbox: Path, out: Path, registry: dict[str, str | None], config: RunConfig | None = None
) -> ReceiveSummary:
    """Admit the intact arrivals of the hub's inbox into ``OUT/submissions``, refuse the rest (hub);
    seals are checked when the run holds the consortium secret (:func:`transfer.hub_secret`)."""
    secret = transfer.hub_secret(config) if config is not None else None
    return transfer.receive_inbox(inbox, out, registry, secret)


@task(
    name="verify-submission",
    task_run_name="verify-submission-{site_id}-{night}",
    cache_policy=NO_CACHE,
)
@expected_failures("verify")
def verify_submission(
    submission: SubmissionSummary,
    registry: dict[str, str | None],
    out: Path,
    site_id: str,
    night: str,
    submission_sha256: str,
    config: RunConfig | None = None,
) -> SubmissionSummary:
    """Check a submission against its ``submission.json`` and the site registry before it is validated;
    a failing one is moved to ``OUT/rejected/<site>/<night>/`` with ``reason.json`` (never validated).
    With a ``config`` whose run holds the consortium secret, the seal is checked too.

    Not cached by default: the nightly run checks what it has just made, every night. The hub caches it
    on the submission's content (``with_options(cache_policy=VERIFIED_ONCE)``), so each version is
    hashed once.
    """
    secret = transfer.hub_secret(config) if config is not None else None
    return transfer.verify_submission(submission, registry, out, secret)


#: the hub's check of what lies in OUT/submissions: each version hashed once (receive checked it already)
verify_submission_once = verify_submission.with_options(cache_policy=VERIFIED_ONCE, persist_result=True)


@task(name="find-submissions", retries=2, retry_delay_seconds=exponential_backoff(2), cache_policy=NO_CACHE)
def find_submissions(root: Path) -> list[SubmissionSummary]:
    """Every submission under ``root/<site>/<night>/`` (what sites delivered to the hub)."""
    return hub.find_submissions(root)


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
    """Validate one submission into a batch: accepted rows, quarantine, warnings, Data Docs (hub).

    In the run's validation worker processes when the flow started them (:func:`hub.validation_workers`),
    so site-nights validate on every core while this task's thread only waits.
    """
    return hub.validate_in_worker(submission_dir, validated_dir)


@task(
    name="load-batch",
    task_run_name="load-batch-{site_id}",
    **_IO_STEP,
)
@expected_failures("load", *hub.LOAD_FAILURES)
def load_into_warehouse(
    db_path: Path,
    validated_dir: Path,
    site_id: str,
    wait_seconds: float = 600.0,
    submission_dir: Path | None = None,
    out_dir: Path | None = None,
) -> LoadSummary:
    """Load a validated batch (with its submission's counts); if another run holds the warehouse, say so
    and wait for it. With ``out_dir``, then erase the site's withdrawn patients from the hub's files."""
    return hub.load_into_warehouse(db_path, validated_dir, wait_seconds, submission_dir, out_dir)


@task(
    name="erase-withdrawn-files",
    **_IO_STEP,
)
def erase_withdrawn_files(db_path: Path, out_dir: Path) -> int:
    """Erase every site's withdrawn patients from the hub's files (submissions, validated batches, refused
    arrivals); how many files were rewritten or removed."""
    return hub.erase_withdrawn_files(db_path, out_dir).files


@task(
    name="publish-warehouse",
    **_IO_STEP,
)
def publish_warehouse(db_path: Path) -> Path:
    """Publish the read-only copy of the warehouse that analysts and the report read; its path."""
    return hub.publish_warehouse(db_path)


@task(name="compare-sites", cache_policy=NO_CACHE)
def compare_site_distributions(validated_root: Path, out_csv: Path) -> int:
    """Cross-site distribution warnings over each site's latest accepted clinical rows; returns how many."""
    return hub.compare_site_distributions(validated_root, out_csv)


@task(
    name="mark-processed",
    task_run_name="mark-processed-{site_night.site_id}-{site_night.night}",
    retries=2,
    retry_delay_seconds=exponential_backoff(2),
    cache_policy=NO_CACHE,
)
def mark_night_processed(site_night: SiteNight, state_dir: Path) -> None:
    """Record the night as done, so the next run does not take the same content again."""
    site.mark_processed(site_night, state_dir)


@task(
    name="warehouse-checksum",
    retries=2,
    retry_delay_seconds=exponential_backoff(2),
    retry_condition_fn=_retry_on_io,
    cache_policy=NO_CACHE,
)
def warehouse_checksum(db_path: Path) -> str:
    """The content checksum of the analysis views (provenance of the report)."""
    return hub.warehouse_checksum(db_path)


def plan_sha256(plan_path: Path) -> str:
    """The analysis plan's identity (any edit to the plan changes the report)."""
    return sha256_file(plan_path)


@task(name="write-report", cache_policy=CACHED, persist_result=True)
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
    files = report.generate(
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
    """The night's markdown summary and its counts per site-night, as Prefect artifacts."""
    create_markdown_artifact(
        key="nightly-summary", markdown=summary.markdown(), description="cohortpool nightly run"
    )
    create_table_artifact(
        key="quarantine-by-site",
        table=summary.rows(),
        description="Files and rows in, de-identified, quarantined and loaded per site-night (counts only)",
    )
