"""Where each declared site stands: the last night received, verified and loaded, and whether it is late.

A consortium's worst day is the silent one: a site whose export job died sends nothing, and a nightly
run with nothing new from it looks like a quiet night. Each site's registry entry says how often it is
expected to send (``expected_every_days``); a site whose last received night is older than that, as of
today where the site is (its ``timezone``), is late.

Read from a run's output folder (:class:`~cohortpool.pipeline.layout.RunLayout`), never from a site's
private files, so the hub can run it:

- received: ``OUT/submissions/<site>/<night>/submission.json`` (a withheld release has none);
- verified: ``OUT/validated/<site>/<night>/summary.json`` (until the hub's receive check lands, a
  submission counts as verified once it is validated);
- loaded: the night's batch in the warehouse (``raw.batches``).

The last night's quarantine counts are those of the last received night: files from its
``submission.json``, rows from its validated batch.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from cohortpool.contract.identifiers import is_night
from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.records import LateSite
from cohortpool.pipeline.runconfig import SiteRun
from cohortpool.warehouse import WarehouseError, connect, sql

#: ``loaded`` when the warehouse could not be read (held by a running load, or damaged)
UNKNOWN = "unknown"


@dataclass(frozen=True)
class SiteStatus:
    """One declared site's standing (counts only: nothing from a hospital's files)."""

    site_id: str
    last_received: str | None
    last_verified: str | None
    #: the last night in the warehouse; :data:`UNKNOWN` when the warehouse could not be read
    last_loaded: str | None
    #: days from the last received night to today at the site (None: nothing received yet)
    days_since: int | None
    expected_every_days: float | None
    late: bool
    #: of the last received night
    files_in: int | None = None
    files_quarantined: int | None = None
    duplicates: int | None = None
    rows_in: int | None = None
    rows_quarantined: int | None = None

    @property
    def lateness(self) -> str:
        """``late: nothing for 5 days (expected every 1)``, ``late: nothing received yet`` or ''."""
        if not self.late:
            return ""
        if self.days_since is None:
            return "late: nothing received yet"
        return f"late: nothing for {self.days_since} days (expected every {self.expected_every_days:g})"


def today_at(site: SiteRun) -> dt.date:
    """Today's date where the site is (its registry time zone, else this machine's)."""
    zone = zoneinfo.ZoneInfo(site.timezone) if site.timezone else None
    return dt.datetime.now(zone).date() if zone else dt.date.today()


def is_late(site: SiteRun, last_night: str | None, today: dt.date | None = None) -> tuple[bool, int | None]:
    """(late?, days since ``last_night``) for ``site`` as of ``today`` (default: today at the site)."""
    when = today or today_at(site)
    days = (when - dt.date.fromisoformat(last_night)).days if last_night else None
    if site.expected_every_days is None:
        return False, days
    return days is None or days > site.expected_every_days, days


def _nights(root: Path, site_id: str, marker: str) -> list[str]:
    folder = root / site_id
    if not folder.is_dir():
        return []
    return sorted(n.name for n in folder.iterdir() if is_night(n.name) and (n / marker).is_file())


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def last_received(layout: RunLayout, site_id: str) -> str | None:
    """The latest night of ``site_id`` with a submission in ``layout`` (None: none yet)."""
    nights = _nights(layout.submissions, site_id, "submission.json")
    return nights[-1] if nights else None


def late_sites(
    layout: RunLayout, sites: Sequence[SiteRun], idle: Sequence[str], today: dt.date | None = None
) -> list[LateSite]:
    """The ``idle`` sites (nothing new tonight) whose last received night is older than their cadence."""
    late = []
    for site in sites:
        if site.site_id not in idle or site.expected_every_days is None:
            continue
        last = last_received(layout, site.site_id)
        overdue, days = is_late(site, last, today)
        if overdue:
            late.append(LateSite(site.site_id, last, days, site.expected_every_days))
    return late


def _loaded(warehouse: Path) -> dict[str, str] | None:
    """Site id -> its latest loaded night; None when the warehouse cannot be read."""
    if not warehouse.is_file():
        return {}
    try:
        con = connect(warehouse, read_only=True, wait_seconds=5.0)
    except WarehouseError:
        return None
    try:
        batches = sql.query_df(con, "load/select_batches_status")
    finally:
        con.close()
    nights = pd.to_datetime(batches["night"]).dt.strftime("%Y-%m-%d")
    return {str(site): str(night) for site, night in nights.groupby(batches["site_id"]).max().items()}


def site_status(
    layout: RunLayout, sites: Sequence[SiteRun], today: dt.date | None = None, *, warehouse: bool = True
) -> list[SiteStatus]:
    """The standing of every declared site, in declaration order.

    Parameters
    ----------
    layout
        The run's output folder (submissions, validated batches, warehouse).
    sites
        The registry (``RunConfig.sites``): each site's cadence and time zone.
    today
        The day lateness is measured on (default: today where each site is).
    warehouse
        Read the last loaded night from the warehouse (a read-only open; off where the caller holds it).
    """
    loaded = _loaded(layout.warehouse) if warehouse else {}
    out = []
    for site in sites:
        received = last_received(layout, site.site_id)
        verified = _nights(layout.out / "validated", site.site_id, "summary.json")
        late, days = is_late(site, received, today)
        counts: dict[str, int | None] = {}
        if received is not None:
            facts = _json(layout.submission(site.site_id, received) / "submission.json") or {}
            files = facts.get("counts", {})
            counts = {
                "files_in": files.get("input_files"),
                "files_quarantined": files.get("quarantined"),
                "duplicates": files.get("duplicate"),
            }
            batch = _json(layout.validated(site.site_id, received) / "summary.json")
            if batch is not None:
                tables = batch.get("tables", {}).values()
                counts["rows_in"] = sum(int(t.get("rows_in", 0)) for t in tables)
                counts["rows_quarantined"] = sum(int(t.get("quarantined", 0)) for t in tables)
        out.append(
            SiteStatus(
                site_id=site.site_id,
                last_received=received,
                last_verified=verified[-1] if verified else None,
                last_loaded=UNKNOWN if loaded is None else loaded.get(site.site_id),
                days_since=days,
                expected_every_days=site.expected_every_days,
                late=late,
                **counts,
            )
        )
    return out


def status_frame(statuses: Sequence[SiteStatus]) -> pd.DataFrame:
    """The statuses as a DataFrame, one row per site (what the report's data-quality section shows)."""
    columns = [f for f in SiteStatus.__dataclass_fields__]
    return pd.DataFrame([asdict(s) for s in statuses], columns=columns)
