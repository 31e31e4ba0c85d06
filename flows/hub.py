"""The hub flow, run at the consortium: receive -> verify -> validate each submission -> load -> publish
-> analyse -> report once.

The hub validates only verified submissions: with an inbox, the run first receives from it (intact
arrivals admitted into ``OUT/submissions``, the rest refused into ``OUT/rejected``); then every submission
in ``OUT/submissions`` is checked once more (one copied there by hand was never received) and a failing
one is refused, never validated, while the others go on. ``cohortpool deploy`` starts this flow on each
``cohortpool.submission.verified`` event and on a daily catch-up schedule.

:func:`finish_night` is the hub half shared with the nightly flow: validations run in parallel in the
run's worker processes (:func:`hub_workers`), loads one at a time in (site, night) order, so the
warehouse's load sequence, and with it every report, is the same whatever order the sites' validations
finished in. After the loads the hub publishes the read-only copy (``OUT/published/warehouse.duckdb``)
and the report reads that copy, as analysts do.
"""

from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import cast

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext
from prefect.futures import PrefectFuture
from prefect.states import Completed, Failed
from prefect.task_runners import ThreadPoolTaskRunner

from cohortpool.pipeline.hub import ValidationWorkers, validation_workers
from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.records import (
    NightFailed,
    NightSummary,
    SiteNightOutcome,
    SubmissionSummary,
    ValidationSummary,
)
from cohortpool.pipeline.runconfig import RunConfig, load_run_config
from cohortpool.pipeline.site import SiteNight
from cohortpool.pipeline.transfer import SubmissionRefusedError, registry_of
from cohortpool.tasks import (
    cache_refresh,
    compare_site_distributions,
    erase_withdrawn_files,
    find_submissions,
    load_into_warehouse,
    log_step,
    mark_night_processed,
    plan_sha256,
    publish_night_summary,
    publish_warehouse,
    receive_submissions,
    validate_batch,
    verify_submission_once,
    warehouse_checksum,
    write_consortium_report,
)

Key = tuple[str, str]
DISTRIBUTION_WARNINGS = "distribution_warnings.csv"


def submit_validation(
    submission: SubmissionSummary, layout: RunLayout, key: str
) -> PrefectFuture[ValidationSummary]:
    """Start validating one submission (re-done if its validated batch was removed since)."""
    out = layout.validated(submission.site_id, submission.night)
    step = cache_refresh(validate_batch, out / "summary.json")
    return step.submit(submission.path, out, submission.site_id, submission.night, submission.sha256, key)


def hub_workers(config: RunConfig, site_nights: int) -> AbstractContextManager[ValidationWorkers | None]:
    """The run's validation worker processes: one per core (``RunConfig.workers``), no more than there
    are site-nights; none when the tasks run elsewhere (a Dask cluster: its workers are the parallelism)
    or there is nothing to validate."""
    context = FlowRunContext.get()
    local = context is None or isinstance(context.task_runner, ThreadPoolTaskRunner)
    return validation_workers(min(config.workers, site_nights) if local else 0)


def night_state(summary: NightSummary) -> State[NightSummary]:
    """The flow run's final state: Failed with a one-line message when a site-night or the consortium
    step failed, Completed otherwise (quarantines alone are a finished night); the summary either way.

    A Failed state's data must be an exception (Prefect resolves it into one; any other object gives
    "Unexpected result for failed state"), so the summary travels inside :class:`NightFailed`.
    """
    if summary.failed or summary.hub_error:
        return Failed(message=summary.state_message(), data=NightFailed(summary))
    return Completed(message=summary.headline(), data=summary)


def submit_report(layout: RunLayout, config: RunConfig, warehouse_sha256: str, db: Path) -> Path | None:
    """Write the consortium report from the warehouse copy ``db`` (re-done if the report folder was
    removed since)."""
    step = cache_refresh(write_consortium_report, layout.report / "report.html")
    # a synchronous task called in a flow returns its result (the stubs also allow a coroutine)
    written = cast(
        "Path | None",
        step(
            db,
            layout.report,
            config.plan,
            warehouse_sha256,
            plan_sha256(config.plan),
            config.small_cell_threshold,
        ),
    )
    return written


def finish_night(
    outcomes: Mapping[Key, SiteNightOutcome],
    validations: Mapping[Key, PrefectFuture[ValidationSummary]],
    layout: RunLayout,
    config: RunConfig,
    site_nights: Mapping[Key, SiteNight] | None = None,
) -> NightSummary:
    """Load the validated batches in order, publish the read-only copy, then the consortium steps; the
    night's summary (the caller adds the idle and late sites and publishes it).

    The loads start once every validation is in: each load then erases the site's withdrawn patients from
    the hub's files (:func:`cohortpool.pipeline.erasure.erase_withdrawn`), submissions included, which a
    validation still running could be reading. A site-night whose validation or load fails is recorded
    and skipped; the others go on. With ``site_nights`` (the nightly flow), a night is marked processed
    only once it is in the warehouse, so a failure anywhere leaves it pending for the next run.
    """
    # every validation is in before the first load: a load erases withdrawn patients from the site's
    # submissions, which no validation may be reading then
    validated: dict[Key, ValidationSummary] = {}
    for key in sorted(validations):
        outcome = outcomes[key]
        try:
            outcome.validation = validations[key].result()
        except Exception as exc:
            outcome.fail("validate", exc)
            log_step("validate", *key, f"validation failed ({type(exc).__name__})", level=40)
            continue
        log_step("validate", *key, outcome.validation.line())
        validated[key] = outcome.validation
    for key, validation in validated.items():
        outcome = outcomes[key]
        try:
            submission = outcome.submission.path if outcome.submission is not None else None
            # the load then erases the site's withdrawn patients from the hub's files under OUT too
            loaded = load_into_warehouse(
                layout.warehouse,
                validation.path,
                key[0],
                submission_dir=submission,
                out_dir=layout.out,
            )
            # a refused batch comes back as the one-line Failed state tasks.expected_failures made of its
            # error (called in this thread, one load at a time): its result() raises that error here
            outcome.load = loaded.result() if isinstance(loaded, State) else loaded
            if site_nights is not None:
                mark_night_processed(site_nights[key], layout.state)
        except Exception as exc:
            outcome.fail("load", exc)
            log_step("load", *key, f"load failed ({type(exc).__name__})", level=40)
            continue
        log_step("load", *key, outcome.load.line())
    summary = NightSummary(outcomes=[outcomes[k] for k in sorted(outcomes)])
    if layout.warehouse.exists():
        summary.warehouse = layout.warehouse
        try:
            # the run's last word on withdrawals: also refused arrivals and sites no load of the run touched
            erase_withdrawn_files(layout.warehouse, layout.out)
            # readers (analysts, BI tools, the report below) see the night once it is all loaded
            published = publish_warehouse(layout.warehouse)
            summary.distribution_warnings = compare_site_distributions(
                layout.out / "validated", layout.out / "validated" / DISTRIBUTION_WARNINGS
            )
            summary.warehouse_sha256 = warehouse_checksum(published)
            summary.report = submit_report(layout, config, summary.warehouse_sha256, published)
        except Exception as exc:
            summary.hub_error, summary.hub_detail = type(exc).__name__, str(exc)
            log_step("report", "consortium", "-", f"failed ({type(exc).__name__})", level=40)
        else:
            done = f"report in {summary.report}" if summary.report else "no report (no patients loaded yet)"
            log_step("report", "consortium", "-", done)
    return summary


@flow(name="hub", flow_run_name="hub", log_prints=False)
def hub(out_dir: Path, inbox_dir: Path | None = None, config: RunConfig | None = None) -> State[NightSummary]:
    """Receive, verify, validate, load and report every submission under ``OUT/submissions/<site>/<night>/``.

    Submissions already verified and validated are taken from the task cache and batches already loaded
    are no-ops, so running the hub again changes nothing.

    Parameters
    ----------
    out_dir
        The hub's output folder (:class:`cohortpool.pipeline.layout.RunLayout`).
    inbox_dir
        The inbox sites push to; received first when given (None: only what ``cohortpool receive``
        already admitted).
    config
        The run's configuration (read from the settings once, here, when a deployment starts the run).
    """
    config = config or load_run_config()
    layout = RunLayout(Path(out_dir))
    registry = registry_of(config)
    outcomes: dict[Key, SiteNightOutcome] = {}
    if inbox_dir is not None:
        received = receive_submissions(Path(inbox_dir), layout.out, registry, config)
        log_step("receive", "hub", "-", received.line())
        for site_id, night, reason in received.refused:
            key = (site_id, night or "receive")
            outcomes[key] = SiteNightOutcome(*key)
            outcomes[key].fail("receive", SubmissionRefusedError(reason))
            log_step("receive", *key, "refused: see the rejected folder's reason.json", level=40)
    submissions = find_submissions(layout.submissions)
    key_ = config.hub_fingerprint()
    validations: dict[Key, PrefectFuture[ValidationSummary]] = {}
    with hub_workers(config, len(submissions)):
        for s in submissions:
            key = (s.site_id, s.night)
            outcomes[key] = SiteNightOutcome(*key, submission=s)
            try:
                # submitted and waited for: the future raises the refusal (a direct call would return it)
                verify_submission_once.submit(s, registry, layout.out, *key, s.sha256, config).result()
            except Exception as exc:
                outcomes[key].fail("verify", exc)
                log_step("verify", *key, f"refused ({type(exc).__name__})", level=40)
                continue
            validations[key] = submit_validation(s, layout, key_)
        summary = finish_night(outcomes, validations, layout, config)
    publish_night_summary(summary)
    return night_state(summary)
