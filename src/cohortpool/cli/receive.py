"""`cohortpool receive INBOX --out OUT`: the hub admits intact submissions and refuses the rest.

The Prefect event that starts the hub's flow is emitted here, not in :mod:`cohortpool.transport`:
stage packages never import Prefect (``tests/test_layout.py``), the CLI may.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer

from cohortpool.cli._app import EXIT_ISSUES, EXIT_OK, app, fail, read_settings
from cohortpool.config import MissingSecretError, WeakSecretError, config_file
from cohortpool.pipeline.deployments import VERIFIED_EVENT

if TYPE_CHECKING:
    from cohortpool.transport import Arrival

__all__ = ["VERIFIED_EVENT", "announce", "receive_command"]


def _line(arrival: Arrival) -> str:
    name = f"{arrival.site}/{arrival.night}" if arrival.night else arrival.site
    if arrival.status == "refused":
        return f"refused {name}: {arrival.reason}; see {arrival.path}/reason.json"
    if arrival.status == "ignored":
        return f"left in the inbox {arrival.path}: {arrival.reason}"
    if arrival.status == "duplicate":
        return f"duplicate {name}: the same submission was admitted before; the new copy was dropped"
    return f"{arrival.status} {name}: {arrival.files} files, {arrival.bytes / 1e6:.1f} MB -> {arrival.path}"


def announce(arrivals: Sequence[Arrival]) -> int:
    """Emit ``cohortpool.submission.verified`` for each admitted submission when a Prefect API is
    configured (``PREFECT_API_URL``); returns how many were sent (0 without an API: nothing is started
    just to announce). The resource names the site and the night; nothing else leaves with it."""
    if not arrivals:
        return 0
    from prefect.settings import PREFECT_API_URL

    if not PREFECT_API_URL.value():
        return 0
    import asyncio

    from prefect.events import Event, Resource
    from prefect.events.clients import get_events_client

    events = [
        Event(
            event=VERIFIED_EVENT,
            resource=Resource(
                {
                    "prefect.resource.id": f"cohortpool.submission.{a.site}.{a.night}",
                    "cohortpool.site_id": a.site,
                    "cohortpool.night": a.night,
                }
            ),
            payload={
                "site_id": a.site,
                "night": a.night,
                "path": str(a.path),
                "submission_sha256": a.submission_sha256,
                "files": a.files,
                "bytes": a.bytes,
                "status": a.status,
            },
        )
        for a in arrivals
    ]

    async def send() -> None:
        async with get_events_client(reconnection_attempts=2) as client:
            for event in events:
                await client.emit(event)

    asyncio.run(send())
    return len(events)


@app.command("receive")
def receive_command(
    inbox: Annotated[
        Path, typer.Argument(help="The hub's inbox: INBOX/<site>/<night>/ as `cohortpool push` leaves them.")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", help="Admitted: OUT/submissions/<site>/<night>/; refused: OUT/rejected/."),
    ],
) -> None:
    """Verify every arrived submission and admit it, or refuse it with the reason and what to do.

    Checked: the site is declared in the configuration's sites and its folder is its own (no link out
    of it is followed); the night is not in the future; submission.json names that site and night, its
    key_fingerprint is the one the registry pins and, when the hub holds the consortium secret, its
    key's, and the seal (mac) is the one that secret gives it; every file listed in submission.json is
    there with its size and sha256, and nothing else is; it is not an older version of a night replaced
    since. Admitted submissions are announced with the Prefect event cohortpool.submission.verified when
    a Prefect API is configured.

    Exit 0: all admitted (or nothing arrived); 1: something was refused; 2: bad usage or configuration
    (no site declared, a weak secret, OUT not a folder: nothing is moved).
    """
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from cohortpool.transport import receive
    from cohortpool.transport.receive import pending_bytes

    if not inbox.is_dir():
        raise fail(f"{inbox}: no such folder (the hub's SFTP inbox)")
    settings = read_settings()
    registry = {site.site_id: site.key_fingerprint for site in settings.sites}
    if not registry:
        raise fail(
            f"no site is declared (configuration: {config_file()}): declare the consortium's sites under "
            "`sites:` in the hub's cohortpool.yaml (COHORTPOOL_CONFIG names it); nothing was moved"
        )
    secret: bytes | None
    try:
        secret = settings.secret_bytes()
    except WeakSecretError as exc:
        raise fail(f"{exc}; nothing was moved") from None
    except MissingSecretError:
        # a hub may choose not to hold the key (whoever holds it can compute the pseudonym of a known
        # record number): sizes, sha256s and pinned fingerprints are checked all the same
        secret = None
        typer.echo(
            "note: no consortium secret at the hub (secret_file or COHORTPOOL_SECRET): seals are not "
            "checked, key fingerprints only against the registry's pins",
            err=True,
        )
    zone = ZoneInfo(settings.hub_timezone) if settings.hub_timezone else None
    today = datetime.datetime.now(zone).date()

    console = Console(stderr=True)
    columns = (TextColumn("verifying"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("verifying", total=pending_bytes(inbox))

        def filed(arrival: Arrival) -> None:
            typer.echo(_line(arrival))  # rich keeps the bar below printed lines on a terminal

        try:
            arrivals = receive(
                inbox,
                out,
                registry,
                on_arrival=filed,
                on_bytes=lambda n: bar.advance(task, n),
                secret=secret,
                today=today,
            )
        except ValueError as exc:
            raise fail(str(exc)) from None
        except PermissionError as exc:
            raise fail(
                f"{exc.filename}: permission denied; the hub's account running receive needs write access "
                "to the inbox folders and OUT (docs/deploy.md)"
            ) from None
    if not arrivals:
        typer.echo(f"nothing arrived in {inbox}")
    try:
        announce([a for a in arrivals if a.admitted])
    except Exception as exc:  # the submissions are admitted; only the announcement failed
        typer.echo(
            f"warning: admitted, but the {VERIFIED_EVENT} event could not be sent ({exc}); "
            "the hub's catch-up run will take these submissions",
            err=True,
        )
    refused = any(a.status in ("refused", "ignored") for a in arrivals)
    raise typer.Exit(EXIT_ISSUES if refused else EXIT_OK)
