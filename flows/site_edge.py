"""The site-edge flow, run inside a hospital: ingest what is new -> de-identify -> pseudonymise -> package
-> push to the hub.

Only the submissions (``OUT/submissions/<site>/<night>/``) may leave the hospital; the vault and the
ingest state stay. With ``push_to`` the run pushes every submission not yet at the hub (the queue: a night
that could not be pushed goes with the next run). :func:`submit_submission` is shared with the nightly
flow, which runs the same tasks for every site without the cost of a sub-flow per site.
"""

from pathlib import Path

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture
from prefect.states import Completed, Failed

from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.records import SubmissionSummary
from cohortpool.pipeline.runconfig import RunConfig, load_run_config
from cohortpool.pipeline.site import SiteFolderError, SiteNight, SourceError
from cohortpool.tasks import (
    build_submission,
    cache_refresh,
    fetch_studies,
    log_step,
    mark_night_processed,
    push_submissions,
    refused_line,
    scan_new_nights,
)


def submit_submission(
    site_night: SiteNight, layout: RunLayout, config: RunConfig, workers: int
) -> PrefectFuture[SubmissionSummary]:
    """Start packaging one site-night (re-done if its submission folder was removed since)."""
    out = layout.submission(site_night.site_id, site_night.night)
    step = cache_refresh(build_submission, out / "submission.json")
    return step.submit(
        site_night.path,
        out,
        layout.vault(site_night.site_id),
        site_night.site_id,
        site_night.night,
        site_night.content_sha256,
        config.site_fingerprint(),
        config,
        workers,
    )


@flow(name="site-edge", flow_run_name="site-edge-{site_id}", log_prints=False)
def site_edge(
    landing_dir: Path,
    out_dir: Path,
    site_id: str,
    source_url: str | None = None,
    workers: int = 1,
    push_to: str | None = None,
    config: RunConfig | None = None,
) -> State[list[SubmissionSummary]]:
    """Package every new night of one site into submissions, and push them to the hub.

    A PACS that cannot be reached, an unreadable landing folder or a night that fails ends the run
    Failed with a one-line message naming what failed (the other nights still go through); the result is
    the submissions made.

    Parameters
    ----------
    landing_dir
        The site's landing folder (``<landing>/<site_id>/<YYYY-MM-DD>/``).
    out_dir
        The run's output folder (see :class:`cohortpool.pipeline.layout.RunLayout`).
    site_id
        The site this hospital is.
    source_url
        An Orthanc or DICOMweb root to fetch new studies from first (None: drop folder only).
    workers
        De-identification worker processes.
    push_to
        The hub's inbox: a folder or ``sftp://user@host[:port]/path`` (None: the submissions stay here).
    config
        The run's configuration (read from the settings once, here, when a deployment starts the run).
    """
    config = config or load_run_config(require_key=True)
    layout = RunLayout(Path(out_dir))
    failures: list[tuple[str, Exception]] = []
    if source_url:
        try:
            fetched = fetch_studies(
                source_url, Path(landing_dir), site_id, layout.state, config.fetch_budget_seconds
            )
            if not fetched.ok:  # some studies failed or the budget ran out: what did land goes on
                raise SourceError(f"{len(fetched.failures)} problem(s): " + "; ".join(fetched.failures[:3]))
            if fetched.refused:  # unusable instances, recorded: the night goes on, the operator is told
                log_step("fetch", site_id, "-", refused_line(fetched), level=30)
        except Exception as exc:
            failures.append(("fetch", exc))
    scan = scan_new_nights(Path(landing_dir), layout.state, (site_id,))
    if site_id in scan.failed:
        failures.append(("scan", SiteFolderError(f"site {site_id}: {scan.failed[site_id]}")))
    pending = [n for n in scan.pending if n.site_id == site_id]
    futures = [(night, submit_submission(night, layout, config, workers)) for night in pending]
    summaries = []
    for night, future in futures:
        try:
            summaries.append(future.result())
        except Exception as exc:  # recorded; the night stays pending for the next run
            failures.append((f"de-identify {night.night}", exc))
            continue
        mark_night_processed(night, layout.state)
    if push_to:
        try:
            pushed = push_submissions(layout.submissions, push_to, site_id)
            log_step("push", site_id, "-", pushed.line())
        except Exception as exc:  # what was not pushed stays queued for the next run
            failures.append(("push", exc))
    if failures:
        what = ", ".join(f"{site_id} at {step} ({type(exc).__name__})" for step, exc in failures)
        return Failed(message=f"failed: {what}; {len(summaries)} submission(s) made", data=failures[0][1])
    return Completed(message=f"{len(summaries)} submission(s) made", data=summaries)
