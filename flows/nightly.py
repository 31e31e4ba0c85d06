"""The nightly flow: every configured site's new nights through the site-edge steps, then the hub.

Between the two halves each submission is verified as the hub's ``receive`` verifies an arrival (declared
site, pinned key fingerprint, every listed file with its size and sha256, nothing unlisted), so the check
a consortium relies on is exercised every night; a submission that fails it is moved to
``OUT/rejected/<site>/<night>/`` with its reason, never validated, and its night stays pending.

Sites run in parallel as tasks, not sub-flows (a flow run costs about a second of Prefect's own time).
One site's failure is recorded in the summary and does not stop the others; the flow run ends Failed
with a one-line message when any site-night failed, so the Prefect UI shows it; quarantines alone end
Completed. Its result is the night's summary either way (:func:`flows.hub.night_state`).
"""

import os
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture, as_completed
from prefect.task_runners import ThreadPoolTaskRunner

from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.records import NightSummary, SiteNightOutcome, SubmissionSummary, ValidationSummary
from cohortpool.pipeline.runconfig import RunConfig, load_run_config
from cohortpool.pipeline.site import SiteFolderError, SiteNight, SourceError
from cohortpool.pipeline.status import late_sites
from cohortpool.pipeline.transfer import registry_of
from cohortpool.tasks import (
    fetch_studies,
    log_step,
    publish_night_summary,
    refused_line,
    scan_new_nights,
    verify_submission,
)
from flows.hub import Key, finish_night, hub_workers, night_state, submit_validation
from flows.site_edge import submit_submission

#: sites at once on the thread runner; each de-identification also starts its own worker processes, so
#: more threads than cores would only multiply processes and memory (30 sites must not mean 60 processes)
SITES_AT_ONCE = max(2, os.cpu_count() or 1)


@flow(
    name="nightly",
    flow_run_name="nightly",
    log_prints=False,
    # Prefect types the runner by its future; the thread runner is the one its docs pass here
    task_runner=ThreadPoolTaskRunner(max_workers=SITES_AT_ONCE),  # type: ignore[arg-type]
)
def nightly(
    landing_dir: Path,
    out_dir: Path,
    workers: int | None = None,
    config: RunConfig | None = None,
    hold_lock: bool = True,
) -> State[NightSummary]:
    """One night of the consortium: fetch, scan, de-identify, validate, load, report.

    Parameters
    ----------
    landing_dir
        The landing folder with ``<site_id>/<YYYY-MM-DD>/`` drops of the configured sites.
    out_dir
        The run's output folder (:class:`cohortpool.pipeline.layout.RunLayout`).
    workers
        De-identification worker processes per site-night (default: ``Settings.workers``; 1 on Dask,
        whose workers are the parallelism).
    config
        The run's configuration: given by ``cohortpool run``; read from the settings once, here, when a
        deployment starts the run.
    hold_lock
        Take the output folder's lock for the run (deployment runs). ``cohortpool run`` passes False: it
        took the lock itself before Prefect started, and a second ``flock`` of its own would wait on it.
    """
    config = config or load_run_config(require_key=True)
    layout = RunLayout(Path(out_dir))
    if not hold_lock:
        return _night(Path(landing_dir), layout, config, workers)
    with layout.exclusive(on_wait=get_run_logger().warning):
        return _night(Path(landing_dir), layout, config, workers)


def _night(landing: Path, layout: RunLayout, config: RunConfig, workers: int | None) -> State[NightSummary]:
    configured = list(config.site_ids)
    n_workers = workers or config.workers
    outcomes: dict[Key, SiteNightOutcome] = {}

    fetches = {
        s.site_id: fetch_studies.submit(
            s.dicomweb_url, landing, s.site_id, layout.state, config.fetch_budget_seconds
        )
        for s in config.sites
        if s.dicomweb_url
    }
    refused: dict[str, int] = {}
    for site_id, fetched in fetches.items():
        try:
            result = fetched.result()
            if not result.ok:  # some studies failed or the time budget ran out: the rest waits
                raise SourceError("; ".join(result.failures[:3]) + f" ({len(result.failures)} problem(s))")
            if result.refused:  # unusable instances, recorded: the site goes on, the operator is told
                log_step("fetch", site_id, "-", refused_line(result), level=30)
                refused[site_id] = len(result.refused)
        except Exception as exc:  # the PACS is down or slow: what did land is still processed
            outcomes[(site_id, "fetch")] = SiteNightOutcome(site_id, "fetch")
            outcomes[(site_id, "fetch")].fail("fetch", exc)
            log_step("fetch", site_id, "-", f"failed ({type(exc).__name__})", level=40)

    scan = scan_new_nights(landing, layout.state, tuple(configured))
    for site_id, reason in scan.failed.items():
        if site_id in configured:  # a missing mount is a failed site, not a quiet night
            outcomes[(site_id, "scan")] = SiteNightOutcome(site_id, "scan")
            outcomes[(site_id, "scan")].fail("scan", SiteFolderError(f"site {site_id}: {reason}"))
            log_step("scan", site_id, "-", f"landing folder not readable: {reason}", level=40)
    pending = scan.pending
    site_nights: dict[Key, SiteNight] = {(n.site_id, n.night): n for n in pending if n.site_id in configured}
    log_step(
        "scan", "consortium", "-", f"{len(site_nights)} new site-night(s)", total=4 * len(site_nights) + 1
    )
    val_key = config.hub_fingerprint()
    registry = registry_of(config)
    # the hub's validation workers start (and import) while the sites de-identify
    with hub_workers(config, len(site_nights)):
        submissions: dict[PrefectFuture[SubmissionSummary], Key] = {}
        for key, site_night in sorted(site_nights.items()):
            outcomes[key] = SiteNightOutcome(*key)
            submissions[submit_submission(site_night, layout, config, n_workers)] = key

        validations: dict[Key, PrefectFuture[ValidationSummary]] = {}
        for future in as_completed(list(submissions)):
            key = submissions[future]
            try:
                submission = future.result()
            except Exception as exc:
                outcomes[key].fail("de-identify", exc)
                log_step("submission", *key, f"de-identification failed ({type(exc).__name__})", level=40)
                continue
            outcomes[key].submission = submission
            log_step("submission", *key, submission.line())
            try:  # what the hub's receive checks, between the site half and the hub half
                # submitted and waited for: the future raises the refusal (a direct call would return it)
                verify_submission.submit(
                    submission, registry, layout.out, *key, submission.sha256, config
                ).result()
            except Exception as exc:
                outcomes[key].fail("verify", exc)
                where = layout.out / "rejected" / key[0] / key[1]
                log_step("verify", *key, f"refused ({type(exc).__name__}): see {where}/reason.json", level=40)
                continue
            log_step("verify", *key, "verified against submission.json and the site registry")
            validations[key] = submit_validation(submission, layout, val_key)

        summary = finish_night(outcomes, validations, layout, config, site_nights)
    summary.fetch_refused = refused
    busy = (
        {site for site, _ in site_nights} | set(scan.failed) | {s for s, step in outcomes if step == "fetch"}
    )
    summary.idle_sites = sorted(set(configured) - busy)
    summary.late = late_sites(layout, config.sites, summary.idle_sites)
    summary.unknown_sites = sorted({n.site_id for n in pending} - set(configured))
    publish_night_summary(summary)
    return night_state(summary)
