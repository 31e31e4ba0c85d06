"""The consortium's Prefect deployments, derived from the site registry (``cohortpool deploy``).

Per declared site: a work pool ``cohortpool-<site>`` (the hospital's worker polls it, outbound only) and
a deployment ``site-edge-<site>`` of the ``site-edge`` flow (ingest, de-identify, push) on the site's
``schedule`` in the site's ``timezone``. At the hub: a pool ``cohortpool-hub`` and a deployment ``hub``
of the ``hub`` flow (receive, validate, load, report), started by every
``cohortpool.submission.verified`` event, one run at a time, plus a daily catch-up schedule.

This module only plans: plain records, no Prefect (the CLI verb turns them into Prefect objects), so
the plan is what ``--dry-run`` prints and what the tests check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from cohortpool.config import Settings

#: the event ``cohortpool receive`` emits for each admitted submission; the hub deployment's trigger
VERIFIED_EVENT = "cohortpool.submission.verified"
HUB_POOL = "cohortpool-hub"
HUB_DEPLOYMENT = "hub"
SITE_EDGE_ENTRYPOINT = "flows/site_edge.py:site_edge"
HUB_ENTRYPOINT = "flows/hub.py:hub"
#: where a schedule without a time zone runs
DEFAULT_TIMEZONE = "UTC"


def site_pool(site_id: str) -> str:
    """The work pool of one site: only that hospital's worker polls it."""
    return f"cohortpool-{site_id}"


def site_deployment(site_id: str) -> str:
    return f"site-edge-{site_id}"


@dataclass(frozen=True)
class PoolPlan:
    """A work pool to create (process workers: a worker runs each flow run as a child process)."""

    name: str
    description: str
    type: str = "process"


@dataclass(frozen=True)
class DeploymentPlan:
    """One deployment: which flow, in which pool, with which parameters, schedule and trigger."""

    flow_name: str
    name: str
    entrypoint: str
    work_pool: str
    description: str
    parameters: dict[str, Any]
    cron: str
    timezone: str
    #: the event name that starts a run (None: the schedule only)
    trigger_event: str | None = None
    #: runs at once (a second run waits for the first)
    concurrency_limit: int = 1
    tags: tuple[str, ...] = field(default_factory=tuple)

    @property
    def full_name(self) -> str:
        return f"{self.flow_name}/{self.name}"

    def line(self) -> str:
        trigger = f", and on every {self.trigger_event} event" if self.trigger_event else ""
        return (
            f"deployment {self.full_name} in pool {self.work_pool}: cron {self.cron!r} in {self.timezone}"
            f"{trigger}; at most {self.concurrency_limit} run at a time; parameters {self.parameters}"
        )


@dataclass(frozen=True)
class Plan:
    pools: tuple[PoolPlan, ...]
    deployments: tuple[DeploymentPlan, ...]

    def lines(self) -> list[str]:
        return [f"work pool {p.name} ({p.type})" for p in self.pools] + [d.line() for d in self.deployments]


#: in a path given for the sites, replaced by each site's id (one machine hosting several test sites)
SITE_PLACEHOLDER = "{site_id}"


def _path(value: PurePath | str, site_id: str = "") -> str:
    return str(value).replace(SITE_PLACEHOLDER, site_id)


def plan_deployments(
    settings: Settings,
    *,
    site_out: PurePath | str | None = None,
    landing: PurePath | str | None = None,
    hub_out: PurePath | str | None = None,
    inbox: PurePath | str | None = None,
    sites: tuple[str, ...] = (),
    hub: bool = True,
) -> Plan:
    """The pools and deployments of the consortium in ``settings`` (or of ``sites`` and, with ``hub``,
    the hub only).

    Paths are the ones the workers will use, each on its own machine (a relative path is taken in the
    worker's working directory): ``site_out`` (default ``data_dir``) and ``landing`` (default
    ``<site_out>/landing``) at every site, ``hub_out`` (default ``data_dir``) and ``inbox`` (default
    ``hub_inbox``) at the hub; ``{site_id}`` in a site path is replaced by the site's id. ``sites``
    must be declared (:class:`cohortpool.config.UndeclaredSiteError`).
    """
    chosen = [settings.site(s) for s in sites] if sites else list(settings.sites)
    out = site_out if site_out is not None else settings.data_dir
    landing_dir = landing if landing is not None else PurePath(out) / "landing"
    pools: list[PoolPlan] = []
    deployments: list[DeploymentPlan] = []
    for site in chosen:
        pool = site_pool(site.site_id)
        where = site.name or site.site_id
        pools.append(PoolPlan(pool, f"the worker at {where}: site-edge runs of this site"))
        parameters: dict[str, Any] = {
            "landing_dir": _path(landing_dir, site.site_id),
            "out_dir": _path(out, site.site_id),
            "site_id": site.site_id,
        }
        if site.dicomweb_url:
            parameters["source_url"] = site.dicomweb_url
        if site.push_to:
            parameters["push_to"] = site.push_to
        deployments.append(
            DeploymentPlan(
                flow_name="site-edge",
                name=site_deployment(site.site_id),
                entrypoint=SITE_EDGE_ENTRYPOINT,
                work_pool=pool,
                description=(
                    f"At {site.name or site.site_id}: ingest the new nights, de-identify, package and push "
                    "the submissions to the hub (only these leave the hospital)."
                ),
                parameters=parameters,
                cron=site.schedule,
                timezone=site.timezone or DEFAULT_TIMEZONE,
                tags=("cohortpool", "site-edge", site.site_id),
            )
        )
    if hub:
        pools.append(PoolPlan(HUB_POOL, "the hub's worker: receive, validate, load, report"))
        hub_inbox = inbox if inbox is not None else settings.hub_inbox
        parameters = {"out_dir": _path(hub_out if hub_out is not None else settings.data_dir)}
        if hub_inbox is not None:
            parameters["inbox_dir"] = _path(hub_inbox)
        deployments.append(
            DeploymentPlan(
                flow_name="hub",
                name=HUB_DEPLOYMENT,
                entrypoint=HUB_ENTRYPOINT,
                work_pool=HUB_POOL,
                description=(
                    "At the hub: receive, verify, validate, load and report; started by every "
                    f"{VERIFIED_EVENT} event, one run at a time, and once a day to catch up."
                ),
                parameters=parameters,
                cron=settings.hub_schedule,
                timezone=settings.hub_timezone or DEFAULT_TIMEZONE,
                trigger_event=VERIFIED_EVENT,
                tags=("cohortpool", "hub"),
            )
        )
    return Plan(tuple(pools), tuple(deployments))
