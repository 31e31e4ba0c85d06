"""`cohortpool run`, `cohortpool demo` and `cohortpool serve`: the nightly flow from the terminal.

These three verbs hand over to ``flows/`` (the only CLI verbs that do); Prefect is imported inside the
command bodies, after the run's environment is set, so ``cohortpool --help`` stays fast and Prefect
reads where to keep its home, results and scratch files from the start.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import SecretStr

from cohortpool.cli._app import EXIT_FAILED, app, fail, read_settings
from cohortpool.cli._run_control import controlled_run, off_the_main_thread
from cohortpool.config import MissingSecretError, Settings, WeakSecretError, config_file
from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.records import ROW_COUNTS, NightSummary, summary_of
from cohortpool.pipeline.runconfig import RunConfig

if TYPE_CHECKING:
    from prefect.client.schemas.objects import State
    from rich.console import Console
    from rich.progress import Progress, TaskID

#: labelled as what it is wherever it appears: it keys pseudonyms of synthetic data only
DEMO_SECRET = "cohortpool-DEMO-ONLY-secret-never-use-for-real-data"  # noqa: S105  (public on purpose)
#: the synthetic consortium of `cohortpool demo`: its sites are declared by the demo itself (their night
#: is fixed in the past, so no cadence: they are never late)
DEMO_SITES = 3

OutOption = Annotated[Path | None, typer.Option("--out", help="Output folder (default: <data_dir>).")]
DaskOption = Annotated[
    str | None,
    typer.Option(
        "--dask",
        help="Dask scheduler address (tcp://host:8786): run the per-site work on that cluster "
        "(default: COHORTPOOL_DASK_ADDRESS; none runs on threads here).",
    ),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's own log lines.")]
NoWaitOption = Annotated[
    bool,
    typer.Option(
        "--no-wait",
        help="When another run holds the output folder, stop with exit 2 naming its PID instead of waiting.",
    ),
]


def _run_config(settings: Settings) -> RunConfig:
    """The run's configuration, with the fingerprint of its key; exit 2 without a usable secret, without
    a declared site, or when a site's registry entry pins another key."""
    try:
        config = RunConfig.from_settings(settings, require_key=True)
        for site in config.sites:
            site.check_key(config.key_fingerprint or "")
    except MissingSecretError as exc:
        raise fail(str(exc)) from None
    if not config.sites:
        raise fail(
            f'no site is declared: add each site under `sites:` in {config_file()} (README, "Site '
            'registry"); only declared sites are processed'
        )
    return config


def prepare_environment(layout: RunLayout, *, own_home: bool = True) -> None:
    """Point Prefect's results, home and the scratch folder into the run's output folder.

    Must run before Prefect is imported (it reads its settings once). ``PREFECT_HOME`` and ``TMPDIR``
    set by the operator are kept; the result cache always lives in ``OUT/.prefect/results`` so that it
    belongs to the outputs it describes.
    """
    layout.scratch.mkdir(parents=True, exist_ok=True)
    layout.results.mkdir(parents=True, exist_ok=True)
    os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(layout.results.resolve())
    if own_home:
        os.environ.setdefault("PREFECT_HOME", str(layout.prefect_home.resolve()))
    if "TMPDIR" not in os.environ:
        os.environ["TMPDIR"] = str(layout.scratch.resolve())
        tempfile.tempdir = None  # forget a temp folder chosen before TMPDIR was set
    # the library's own warnings (e.g. a site's unreadable landing folder) reach the run's log and terminal
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "cohortpool")
    # a fresh PREFECT_HOME builds the temporary server's database first: allow for a busy machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


class _ProgressHandler(logging.Handler):
    """Turns the flow's step log records (``cohortpool_step``) into a rich progress bar."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        super().__init__(logging.INFO)
        self.progress, self.task = progress, task

    def emit(self, record: logging.LogRecord) -> None:
        step = getattr(record, "cohortpool_step", None)
        if step is None:
            return
        total = getattr(record, "cohortpool_total", None)
        if total is not None:
            self.progress.update(self.task, total=total, completed=0)
        else:
            self.progress.advance(self.task)
        style = "red" if record.levelno >= logging.ERROR else "dim"
        self.progress.console.print(f"[{style}]{step:>10}[/] {record.getMessage()}", highlight=False)


def _run_nightly(
    landing: Path,
    layout: RunLayout,
    config: RunConfig,
    address: str | None,
    verbose: bool,
    api_url: str | None,
) -> int:
    """The nightly flow in this process, on the Prefect API at ``api_url`` (None: PREFECT_API_URL's).

    The caller holds the output folder's lock (the flow does not take it again).
    """
    if not verbose:  # Prefect's INFO lines still reach its API; the terminal shows the progress bar
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    from flows.nightly import nightly
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn

    options: dict[str, Any] = {}
    if address:
        from prefect_dask.task_runners import DaskTaskRunner

        options["task_runner"] = DaskTaskRunner(address=address)
    flow_logger = logging.getLogger("prefect.flow_runs")
    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        "{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task("nightly run (starting Prefect)", total=None)
        handler = _ProgressHandler(progress, bar)
        flow_logger.addHandler(handler)
        try:
            # the task cache belongs to the outputs it describes (also when Prefect was imported earlier)
            # ... and so does the API of this run's temporary server
            updates: dict[Any, Any] = {PREFECT_LOCAL_STORAGE_PATH: layout.results.resolve()}
            if api_url is not None:
                updates[PREFECT_API_URL] = api_url

            def night() -> State[Any]:  # the flow returns its own State; Prefect nests the type
                with temporary_settings(updates):
                    state = nightly.with_options(**options)(
                        landing_dir=landing.resolve(),
                        out_dir=layout.out.resolve(),
                        workers=1 if address else None,
                        config=config,
                        hold_lock=False,
                        return_state=True,
                    )
                    # the run's last log lines and events reach the server before the caller stops it
                    APILogWorker.drain_all(timeout=30)
                    EventsWorker.drain_all(timeout=30)
                return state

            state = off_the_main_thread(night)
        except OSError as exc:  # e.g. the Dask scheduler cannot be reached
            raise fail(f"cannot start the nightly run: {exc}", EXIT_FAILED) from None
        finally:
            flow_logger.removeHandler(handler)
        progress.update(bar, description="nightly run")
    summary = summary_of(state.result(raise_on_failure=False))
    if summary is None:
        typer.echo(f"error: the nightly run crashed: {state.message}", err=True)
        return EXIT_FAILED
    _print_summary(summary, console)
    return summary.exit_code


#: the summary table's columns: (header, row key); counts of a step that did not run stay empty
_COLUMNS = (
    ("site", "site_id"),
    ("night", "night"),
    ("status", "status"),
    *zip(
        (
            "files\nin",
            "files\nde-id.",
            "files\nquar.",
            "files\ndup.",
            "rows\nin",
            "rows\nloaded",
            "rows\nquar.",
        ),
        ROW_COUNTS[:7],
        strict=True,
    ),
)


def _print_summary(summary: NightSummary, console: Console) -> None:
    """Per site-night what came in and what became of it; then what needs a look; then the outputs."""
    from rich.table import Table

    rows = summary.rows()
    if rows:
        # no vertical rules and one space between columns: ten columns fit 80 characters
        table = Table(
            title=f"nightly run: {summary.headline()}",
            title_justify="left",
            box=None,
            padding=(0, 1, 0, 0),
            header_style="bold",
        )
        for header, key in _COLUMNS:
            table.add_column(header, justify="right" if key in ROW_COUNTS else "left", no_wrap=True)
        for row in rows:
            # the status word here; its stage, reason or lateness on a line of its own below
            cells = {**row, "status": row["status"].split(" ")[0]}
            table.add_row(*("" if cells[key] is None else str(cells[key]) for _, key in _COLUMNS))
        console.print(table)
    for o in summary.outcomes:
        if o.failed_step is not None:
            console.print(
                f"[red]{o.label}[/]: failed at {o.failed_step}: {o.error}: {o.detail}", highlight=False
            )
        if o.submission and o.submission.table_error:
            console.print(f"[red]{o.site_id} {o.night}[/]: tables: {o.submission.table_error}")
    for late in summary.late:
        console.print(f"[yellow]{late.site_id}[/]: {late.row()['status']}", highlight=False)
    late_ids = {s.site_id for s in summary.late}
    idle = [s for s in summary.idle_sites if s not in late_ids]
    if idle:
        console.print(f"nothing new from: {', '.join(idle)}")
    if summary.unknown_sites:
        console.print(f"not declared in the registry, left alone: {', '.join(summary.unknown_sites)}")
    if summary.hub_error:
        console.print(f"[red]consortium step failed[/]: {summary.hub_error}: {summary.hub_detail}")
    if summary.report is not None:
        typer.echo(f"report:     {summary.report / 'report.html'}")
    if summary.warehouse is not None:
        typer.echo(f"warehouse:  {summary.warehouse}")
    for docs in summary.data_docs:
        typer.echo(f"data docs:  {docs}")


@app.command("run")
def run(
    landing_dir: Annotated[Path, typer.Argument(help="Landing folder: <site_id>/<YYYY-MM-DD>/ site drops.")],
    out: OutOption = None,
    dask: DaskOption = None,
    verbose: VerboseOption = False,
    no_wait: NoWaitOption = False,
) -> None:
    """Run the nightly flow once over LANDING_DIR: de-identify, validate, load, analyse, report.

    Needs the consortium secret (COHORTPOOL_SECRET or secret_file in cohortpool.yaml) and the sites
    declared in cohortpool.yaml (sites). Nights already processed with the same content are skipped, so
    running the same night twice changes nothing.

    One run at a time per output folder: a second one waits, naming the PID of the run holding it
    (--no-wait: exit 2 instead). Ctrl-C stops the run at once; run it again to finish.

    Exit 0: all clean; 1: done, something quarantined; 2: bad usage or configuration (nothing run),
    or the output folder busy with --no-wait; 3: a site or the consortium step failed (the others went
    on); 130: interrupted (Ctrl-C; 143: SIGTERM).
    """
    settings = read_settings()
    config = _run_config(settings)
    if not landing_dir.is_dir():
        raise fail(f"landing folder {landing_dir} does not exist or is not a folder")
    layout = RunLayout(out if out is not None else settings.data_dir)
    if landing_dir.resolve().is_relative_to(layout.out.resolve() / "submissions"):
        raise fail(f"{landing_dir} is inside the run's submissions; pass the site drops' landing folder")
    with controlled_run(layout, wait=not no_wait) as control:
        prepare_environment(layout)
        api_url = control.prefect_api()
        code = _run_nightly(landing_dir, layout, config, dask or settings.dask_address, verbose, api_url)
    raise typer.Exit(code)


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option("--out", help="Output folder (landing, warehouse, report).")] = Path(
        "demo_out"
    ),
    dask: DaskOption = None,
    verbose: VerboseOption = False,
    no_wait: NoWaitOption = False,
) -> None:
    """Synthesize a 3-site consortium into OUT/landing and run the whole nightly flow on it.

    Without COHORTPOOL_SECRET a fixed, DEMO-ONLY secret keys the pseudonyms (it says so): never use the
    demo for real data. The demo declares its three synthetic sites itself.

    Exit 1 is expected: the demo plants defects, which are quarantined.
    """
    from cohortpool.synth import write_consortium

    # the public DEMO-ONLY secret is accepted only here (Settings.demo), by this process and its tasks
    os.environ["COHORTPOOL_DEMO"] = "1"
    demo_sites = [{"site_id": f"site{i:02d}", "expected_every_days": None} for i in range(1, DEMO_SITES + 1)]
    settings = read_settings(sites=demo_sites)
    try:
        settings.secret_bytes()
    except WeakSecretError as exc:
        raise fail(str(exc)) from None
    except MissingSecretError:
        # the steps read the key from the environment where they run (it never travels with the run)
        os.environ["COHORTPOOL_SECRET"] = DEMO_SECRET
        settings = settings.model_copy(update={"secret": SecretStr(DEMO_SECRET)})
        typer.echo(
            "note: COHORTPOOL_SECRET is not set: using the fixed DEMO-ONLY secret (synthetic data only)"
        )
    config = _run_config(settings)
    layout = RunLayout(out)
    with controlled_run(layout, wait=not no_wait) as control:
        prepare_environment(layout)
        typer.echo(f"synthesizing a {DEMO_SITES}-site consortium into {layout.landing} ...")
        summary = write_consortium(layout.landing, sites=DEMO_SITES)
        # the planted-defect list is no hospital's export: keep it beside the landing folder, not in it
        truth = Path(summary["truth"])
        shutil.move(truth, layout.out / truth.name)
        typer.echo(f"planted defects (what should be quarantined): {layout.out / truth.name}")
        files, sites = sum(s["dicom_files"] for s in summary["sites"]), len(summary["sites"])
        typer.echo(f"{files} DICOM files from {sites} sites")
        api_url = control.prefect_api()
        code = _run_nightly(layout.landing, layout, config, dask or settings.dask_address, verbose, api_url)
    raise typer.Exit(code)


@app.command("serve")
def serve(
    cron: Annotated[
        str | None, typer.Option("--cron", help="Cron schedule (default: schedule_cron, 0 2 * * *).")
    ] = None,
    landing: Annotated[
        Path | None, typer.Option("--landing", help="Landing folder (default: <data_dir>/landing).")
    ] = None,
    out: OutOption = None,
) -> None:
    """Serve the nightly flow on a cron schedule until Ctrl-C (one run at a time).

    Runs report to the Prefect server in PREFECT_API_URL (see README, "Running nightly"). The schedule
    stays active after this process stops; two runs never overlap (a deployment concurrency limit of 1).
    """
    settings = read_settings()
    _run_config(settings)  # refuse to serve without a usable key; each served run reads its own
    layout = RunLayout(out if out is not None else settings.data_dir)
    landing_dir = landing if landing is not None else layout.landing
    schedule = cron or settings.schedule_cron
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=schedule)
    except ValueError as exc:
        raise fail(f"--cron {schedule!r} is not a cron expression: {exc}") from None
    # served runs are child processes: they read the results and scratch locations from the environment
    prepare_environment(layout, own_home=False)
    from flows.nightly import nightly

    typer.echo(f"serving the nightly flow on {schedule!r}: landing {landing_dir}, outputs {layout.out}")
    nightly.serve(
        name="cohortpool-nightly",
        cron=schedule,
        parameters={"landing_dir": str(landing_dir.resolve()), "out_dir": str(layout.out.resolve())},
        pause_on_shutdown=False,
        global_limit=1,
        description="Every configured site's new nights: de-identify, validate, load, analyse, report.",
    )
