"""`cohortpool deploy`: the consortium's Prefect work pools and deployments, generated from the registry.

The plan comes from :mod:`cohortpool.pipeline.deployments` (no Prefect there); this verb registers it
with the Prefect server in ``PREFECT_API_URL`` through Prefect's own client: the work pools first, then
each deployment of a flow loaded from this installation's ``flows/`` (the workers run the flows from the
same path, so the hub and every site install cohortpool at the same place, or set ``--source``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from cohortpool.cli._app import EXIT_FAILED, EXIT_OK, app, declared_site, fail, read_settings
from cohortpool.config import disable_telemetry
from cohortpool.pipeline.deployments import Plan, plan_deployments

if TYPE_CHECKING:
    from cohortpool.pipeline.deployments import DeploymentPlan


def _flows_root() -> Path:
    """The folder holding the ``flows`` package (the checkout, or site-packages of the wheel)."""
    import flows

    return Path(flows.__file__).resolve().parent.parent


def _check_schedules(plan: Plan) -> None:
    """Every cron expression as Prefect reads it (its values: ``0 25 * * *`` has the right shape only)."""
    from prefect.client.schemas.schedules import CronSchedule

    for d in plan.deployments:
        try:
            CronSchedule(cron=d.cron, timezone=d.timezone)
        except ValueError as exc:
            why = " ".join(str(exc).split())
            what = f"{d.full_name}: schedule {d.cron!r} in {d.timezone}"
            raise fail(f"{what} is refused by Prefect: {why}") from None


def _create_pools(plan: Plan) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    with get_client(sync_client=True) as client:
        for pool in plan.pools:
            try:
                made = WorkPoolCreate(name=pool.name, type=pool.type, description=pool.description)
                client.create_work_pool(made.model_copy(update={"base_job_template": template}))
                typer.echo(f"created work pool {pool.name} ({pool.type})")
            except ObjectAlreadyExists:
                typer.echo(f"work pool {pool.name} exists")


def _apply(d: DeploymentPlan, root: Path) -> str:
    import datetime as dt

    from prefect import Flow
    from prefect.deployments.runner import RunnerDeployment
    from prefect.events import DeploymentEventTrigger, DeploymentTriggerTypes, TriggerTypes
    from prefect.events.schemas.automations import Posture
    from prefect.runner.storage import LocalStorage
    from prefect.schedules import Cron

    # from_source and to_deployment dispatch on the caller: called outside an event loop, they return
    # the object, not a coroutine
    flow = cast("Flow[..., Any]", Flow.from_source(LocalStorage(str(root)), d.entrypoint))
    triggers: list[DeploymentTriggerTypes | TriggerTypes] = []
    if d.trigger_event is not None:
        # one run per admitted submission (each event, none waited for); the deployment's concurrency
        # limit queues them, so one hub run at a time loads
        triggers.append(
            DeploymentEventTrigger(
                name=f"{d.name} on {d.trigger_event}",
                expect={d.trigger_event},
                match={"prefect.resource.id": "cohortpool.submission.*"},
                posture=Posture.Reactive,
                threshold=1,
                within=dt.timedelta(0),
            )
        )
    deployment = cast(
        "RunnerDeployment",
        flow.to_deployment(
            name=d.name,
            work_pool_name=d.work_pool,
            parameters=d.parameters,
            schedules=[Cron(d.cron, timezone=d.timezone)],
            triggers=triggers,
            concurrency_limit=d.concurrency_limit,
            description=d.description,
            tags=list(d.tags),
        ),
    )
    return str(deployment.apply())


@app.command("deploy")
def deploy(
    site: Annotated[
        list[str] | None,
        typer.Option("--site", help="Only this declared site (repeat for more); default: every site."),
    ] = None,
    hub: Annotated[
        bool, typer.Option("--hub/--no-hub", help="Also the hub's pool and deployment (default: yes).")
    ] = True,
    landing: Annotated[
        str | None,
        typer.Option("--landing", help="Landing folder at the sites (default: <site out>/landing)."),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out", help="Output folder at the sites (default: data_dir); {site_id} is replaced by the site."
        ),
    ] = None,
    hub_out: Annotated[
        str | None, typer.Option("--hub-out", help="Output folder at the hub (default: data_dir).")
    ] = None,
    inbox: Annotated[
        str | None,
        typer.Option("--inbox", help="The hub's inbox its runs receive from first (default: hub_inbox)."),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--source",
            help="Folder holding flows/ on the workers' machines (default: this installation's).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the pools and deployments; create nothing.")
    ] = False,
) -> None:
    """Create the work pools and deployments of the consortium declared in cohortpool.yaml.

    Per declared site: a work pool cohortpool-<site> (the hospital's worker polls it, outbound only) and a
    deployment site-edge-<site> (ingest, de-identify, push to push_to) on the site's schedule in its
    timezone. At the hub: a pool cohortpool-hub and a deployment hub/hub (receive, validate, load, report)
    started by every cohortpool.submission.verified event, one run at a time, plus a daily catch-up run
    (hub_schedule in hub_timezone). Running it again updates them. Paths are the workers' own (a relative
    one is taken in the worker's working directory).

    Needs PREFECT_API_URL (the hub's Prefect server), except with --dry-run. The nightly flow stays for
    one machine: flows/prefect.yaml or `cohortpool serve`.

    Exit 0: created or updated; 2: bad usage or configuration (nothing created); 3: the Prefect server
    refused or could not be reached.
    """
    disable_telemetry()
    settings = read_settings()
    for site_id in site or ():
        declared_site(settings, site_id)
    if not settings.sites and not site:
        raise fail("no site is declared: add each site under `sites:` in cohortpool.yaml, then deploy")
    chosen = tuple(site or ())
    plan = plan_deployments(
        settings, site_out=out, landing=landing, hub_out=hub_out, inbox=inbox, sites=chosen, hub=hub
    )
    _check_schedules(plan)
    if dry_run:
        for line in plan.lines():
            typer.echo(f"would create {line}")
        raise typer.Exit(EXIT_OK)
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        raise fail("PREFECT_API_URL is not set: point it at the hub's Prefect server (docs/deploy.md)")
    root = (source or _flows_root()).resolve()
    if not (root / "flows" / "site_edge.py").is_file():
        raise fail(f"--source {root}: no flows/site_edge.py there")
    for line in plan.lines():
        typer.echo(line)
    try:
        _create_pools(plan)
        for d in plan.deployments:
            typer.echo(f"deployed {d.full_name} ({_apply(d, root)})")
    except Exception as exc:
        if not isinstance(exc, OSError | RuntimeError) and not type(exc).__module__.startswith(
            ("httpx", "prefect")
        ):
            raise  # a bug: keep its traceback
        why = " ".join(str(exc).split())[:300]
        server = PREFECT_API_URL.value()
        message = f"the Prefect server at {server} refused or cannot be reached: {why}"
        raise fail(message, EXIT_FAILED) from None
    raise typer.Exit(EXIT_OK)
