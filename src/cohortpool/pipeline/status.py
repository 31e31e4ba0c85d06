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

One site's odd folder never hides the others. A night dated after today at the site (a wrong clock or
time zone, a misnamed folder) is not a valid last night: it is not counted, and the site's ``problems``
say so. A last night whose ``submission.json`` cannot be read, or whose ``counts`` are not an object of
non-negative integers, is shown without those counts, with a problem naming the file and what to do.
``cohortpool status`` exits 3 when a site has a problem.
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
    #: what is wrong with the site's folders, one line each saying where and what to do (empty: nothing)
    problems: tuple[str, ...] = ()

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
    """(late?, days since ``last_night``) for ``site`` as of ``today`` (default: today at the site).

    A ``last_night`` after ``today`` is no last night (it is not counted: days None).
    """
    when = today or today_at(site)
    days = (when - dt.date.fromisoformat(last_night)).days if last_night else None
    if days is not None and days < 0:
        days = None
    if site.expected_every_days is None:
        return False, days
    return days is None or days > site.expected_every_days, days


def _nights(root: Path, site_id: str, marker: str) -> list[str]:
    folder = root / site_id
    try:
        return sorted(n.name for n in folder.iterdir() if is_night(n.name) and (n / marker).is_file())
    except OSError:  # no folder yet (or not one): nothing there
        return []


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # ValueError: not UTF-8, or not JSON
        return None
    return data if isinstance(data, dict) else None


def _count(value: object) -> int | None:
    """``value`` when it is a count (a non-negative integer), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


#: the ``counts`` keys a ``submission.json`` carries (data contract section 2)
COUNT_KEYS = ("input_files", "deidentified", "quarantined", "duplicate", "series", "clinical", "reads")


def manifest_counts(manifest: Path) -> tuple[dict[str, int], str | None]:
    """The ``counts`` of a ``submission.json`` that are counts, and why the others are not.

    Returns the usable counts and None when the file reads as it should; otherwise what is wrong, in
    words (``not readable JSON (...)``, ``counts is missing``, ``counts is a JSON list, not an object``,
    ``counts.input_files is not a non-negative integer``). Never raises.
    """
    try:
        facts = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not UTF-8, or not JSON
        return {}, f"not readable JSON ({exc})"
    if not isinstance(facts, dict):
        return {}, "not a JSON object"
    counts = facts.get("counts")
    if not isinstance(counts, dict):
        kind = {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}
        what = "missing" if counts is None else f"a JSON {kind.get(type(counts), 'value')}, not an object"
        return {}, f"counts is {what}"
    usable = {str(k): v for k, v in counts.items() if _count(v) is not None}
    odd = [k for k in COUNT_KEYS if k in counts and k not in usable]
    return usable, (f"counts.{odd[0]} is not a non-negative integer" if odd else None)


def _row_counts(summary: Path) -> tuple[tuple[int, int] | None, str | None]:
    """(rows in, rows quarantined) of a validated batch's ``summary.json``, or None and why not."""
    batch = _json(summary)
    if batch is None:
        return None, "not a readable JSON object"
    tables = batch.get("tables", {})
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        return None, "tables is not an object of tables"
    rows_in = [_count(t.get("rows_in", 0)) for t in tables.values()]
    quarantined = [_count(t.get("quarantined", 0)) for t in tables.values()]
    if None in rows_in or None in quarantined:
        return None, "a table's rows_in or quarantined is not a non-negative integer"
    return (sum(n for n in rows_in if n), sum(n for n in quarantined if n)), None


def _received(layout: RunLayout, site_id: str, upto: dt.date | None) -> list[str]:
    nights = _nights(layout.submissions, site_id, "submission.json")
    return [n for n in nights if upto is None or dt.date.fromisoformat(n) <= upto]


def last_received(layout: RunLayout, site_id: str, today: dt.date | None = None) -> str | None:
    """The latest night of ``site_id`` with a submission in ``layout`` (None: none yet); with ``today``,
    the latest not after it (a night after today is not a valid last night)."""
    nights = _received(layout, site_id, today)
    return nights[-1] if nights else None


def late_sites(
    layout: RunLayout, sites: Sequence[SiteRun], idle: Sequence[str], today: dt.date | None = None
) -> list[LateSite]:
    """The ``idle`` sites (nothing new tonight) whose last received night is older than their cadence
    (a night dated after today at the site does not count)."""
    late = []
    for site in sites:
        if site.site_id not in idle or site.expected_every_days is None:
            continue
        when = today or today_at(site)
        last = last_received(layout, site.site_id, min(when, today_at(site)))
        overdue, days = is_late(site, last, when)
        if overdue:
            late.append(LateSite(site.site_id, last, days, site.expected_every_days))
    return late


def _future(layout: RunLayout, site: SiteRun, at_site: dt.date) -> str | None:
    """The problem line for the site's received nights dated after ``at_site`` (None: there are none)."""
    future = [
        n
        for n in _nights(layout.submissions, site.site_id, "submission.json")
        if dt.date.fromisoformat(n) > at_site
    ]
    if not future:
        return None
    more = f" (and {len(future) - 1} later)" if len(future) > 1 else ""
    zone = site.timezone or "this machine's time zone"
    return (
        f"night in the future: {layout.submission(site.site_id, future[0])}{more} is dated after today at "
        f"the site ({at_site}, {zone}), so it is not counted as the last night: check the site's clock "
        "and its timezone in cohortpool.yaml, or move a misnamed folder out of the submissions"
    )


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
        at_site = today_at(site)
        when = today or at_site
        upto = min(when, at_site)  # a night after today at the site is never a last night
        received = last_received(layout, site.site_id, upto)
        verified = [
            n
            for n in _nights(layout.out / "validated", site.site_id, "summary.json")
            if dt.date.fromisoformat(n) <= upto
        ]
        late, days = is_late(site, received, when)
        future = _future(layout, site, at_site)
        problems = [future] if future else []
        counts: dict[str, int | None] = {}
        if received is not None:
            manifest = layout.submission(site.site_id, received) / "submission.json"
            files, why = manifest_counts(manifest)
            counts = {
                "files_in": files.get("input_files"),
                "files_quarantined": files.get("quarantined"),
                "duplicates": files.get("duplicate"),
            }
            if why is not None:
                problems.append(
                    f"unreadable manifest: {manifest} ({why}), so its counts are not shown: have the site "
                    "package the night again and push it (the hub refuses a manifest that is not a "
                    "submission's)"
                )
            summary = layout.validated(site.site_id, received) / "summary.json"
            if summary.is_file():
                rows, why = _row_counts(summary)
                if rows is not None:
                    counts["rows_in"], counts["rows_quarantined"] = rows
                else:
                    problems.append(
                        f"unreadable batch summary: {summary} ({why}), so its rows are not shown: remove "
                        "the folder and run the hub again to validate the night anew"
                    )
        out.append(
            SiteStatus(
                site_id=site.site_id,
                last_received=received,
                last_verified=verified[-1] if verified else None,
                last_loaded=UNKNOWN if loaded is None else loaded.get(site.site_id),
                days_since=days,
                expected_every_days=site.expected_every_days,
                late=late,
                problems=tuple(problems),
                **counts,
            )
        )
    return out


def status_frame(statuses: Sequence[SiteStatus]) -> pd.DataFrame:
    """The statuses as a DataFrame, one row per site (what the report's data-quality section shows)."""
    columns = [f for f in SiteStatus.__dataclass_fields__]
    return pd.DataFrame([asdict(s) for s in statuses], columns=columns)
