"""`cohortpool status`: where each declared site stands, and which one has gone quiet."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from cohortpool.cli._app import EXIT_FAILED, EXIT_ISSUES, EXIT_OK, app, fail, read_settings
from cohortpool.pipeline.layout import RunLayout
from cohortpool.pipeline.runconfig import RunConfig

#: (header, SiteStatus field) of the table
_COLUMNS = (
    ("site", "site_id"),
    ("received", "last_received"),
    ("verified", "last_verified"),
    ("loaded", "last_loaded"),
    ("days", "days_since"),
    ("every", "expected_every_days"),
    ("late", "late"),
    ("files", "files_in"),
    ("quar.", "files_quarantined"),
    ("rows", "rows_in"),
    ("quar.", "rows_quarantined"),
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "LATE" if value else ""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@app.command("status")
def status(
    out: Annotated[
        Path | None, typer.Option("--out", help="The run's output folder (default: <data_dir>).")
    ] = None,
    date: Annotated[
        str | None,
        typer.Option("--date", help="Measure lateness on this day YYYY-MM-DD (default: today at each site)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per site.")] = False,
) -> None:
    """Show each declared site's last night received, verified and loaded, and whether it is late.

    A site is late after more days without a night than its expected_every_days in cohortpool.yaml
    (measured on today's date at the site, or --date).

    Received: a submission in OUT/submissions; verified: its validated batch in OUT/validated (the hub's
    receive check will take this over); loaded: its batch in the warehouse. Days: since the last night
    received; every: the expected cadence in days; files and rows: in and quarantined, of that night.

    A night dated after today at the site is not counted (a wrong clock or time zone, a misnamed
    folder), and a last night whose submission.json or counts cannot be read is shown without its
    counts; each such problem is printed under the table, naming the file and what to do.

    Exit 0: every site on time; 1: a site is late; 2: bad usage or configuration; 3: a site has a
    problem (the others are still shown; the late ones are printed too).
    """
    from rich.console import Console
    from rich.table import Table

    from cohortpool.pipeline.status import site_status

    settings = read_settings()
    config = RunConfig.from_settings(settings)  # the hub holds no key: none is needed here
    if not config.sites:
        raise fail("no site is declared: add each site under `sites:` in cohortpool.yaml")
    layout = RunLayout(out if out is not None else settings.data_dir)
    if not layout.out.is_dir():
        raise fail(f"{layout.out} is not a folder (pass the run's output folder with --out)")
    try:
        today = dt.date.fromisoformat(date) if date else None
    except ValueError:
        raise fail(f"--date {date!r} is not a date YYYY-MM-DD") from None
    statuses = site_status(layout, config.sites, today)
    if as_json:
        for entry in statuses:
            typer.echo(json.dumps(asdict(entry), sort_keys=True))
    else:
        # no vertical rules: eleven columns fit 80 characters
        table = Table(
            title=f"sites in {layout.out}",
            title_justify="left",
            box=None,
            padding=(0, 1, 0, 0),
            header_style="bold underline",
        )
        for header, key in _COLUMNS:
            text = key.startswith(("site", "last"))
            table.add_column(header, justify="left" if text else "right", no_wrap=True)
        for entry in statuses:
            values = asdict(entry)
            table.add_row(*(_cell(values[key]) for _, key in _COLUMNS))
        Console().print(table)
        for entry in statuses:
            if entry.late:
                typer.echo(f"{entry.site_id}: {entry.lateness}")
            for problem in entry.problems:
                typer.echo(f"{entry.site_id}: {problem}")
    if any(s.problems for s in statuses):
        raise typer.Exit(EXIT_FAILED)
    raise typer.Exit(EXIT_ISSUES if any(s.late for s in statuses) else EXIT_OK)
