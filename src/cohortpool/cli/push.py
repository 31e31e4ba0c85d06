"""`cohortpool push [SUBMISSION_DIR ...] DEST [--outbox DIR]`: send submissions to the hub's inbox."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cohortpool.cli._app import EXIT_ISSUES, EXIT_OK, app, fail

if TYPE_CHECKING:
    from cohortpool.transport import PushResult

#: some submissions could not be pushed (they stay queued) while the others went on
EXIT_NOT_PUSHED = 3


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def _done_line(result: PushResult, dest: str, seconds: float) -> str:
    name = f"{result.site_id}/{result.night}"
    if result.status == "unchanged":
        return f"unchanged {name}: already at {dest}"
    resumed = f", {result.files_resumed} there from an interrupted push" if result.files_resumed else ""
    rate = f", {result.bytes_sent / 1e6 / seconds:.1f} MB/s" if seconds > 0 and result.bytes_sent else ""
    return (
        f"{result.status} {name} to {dest}: {result.files_sent} files, {_megabytes(result.bytes_sent)}"
        f"{resumed} in {seconds:.1f} s{rate}"
    )


@app.command("push")
def push_command(
    args: Annotated[
        list[str],
        typer.Argument(
            help="Submission folder(s) to push, then DEST: a folder, or sftp://user@host[:port]/path.",
            show_default=False,
            metavar="[SUBMISSION_DIR]... DEST",
        ),
    ],
    outbox: Annotated[
        Path | None,
        typer.Option(
            "--outbox",
            help="Also push every submission OUTBOX/<site>/<night>/ not yet pushed to DEST (the queue); "
            "receipts go to OUTBOX/.pushed/.",
        ),
    ] = None,
    known_hosts: Annotated[
        list[Path] | None,
        typer.Option(
            "--known-hosts",
            help="known_hosts file(s) with the hub's host key (default: ~/.ssh/known_hosts and "
            "/etc/ssh/ssh_known_hosts). Unknown or changed host keys are refused, never added.",
        ),
    ] = None,
    identity: Annotated[
        Path | None,
        typer.Option(
            "--identity", "-i", help="Private key of the SFTP login (default: ssh-agent, ~/.ssh/id_*)."
        ),
    ] = None,
    budget_minutes: Annotated[
        float,
        typer.Option(
            "--budget-minutes",
            min=0,
            help="Retry dropped connections (waits 1, 2, 4 ... 60 s) until this much time has passed; "
            "what is not pushed by then stays queued.",
        ),
    ] = 30.0,
) -> None:
    """Push submissions so the hub sees each whole or not at all (resumable, idempotent, retried).

    Files go to DEST/.incoming/<site>-<night>.partial/ under temporary names, submission.json last, then
    one rename makes DEST/<site>/<night>/. A push that was interrupted resumes; the same content pushed
    again changes nothing; a changed night replaces the old one whole.

    Exit 0: all pushed; 1: a submission was refused (its files differ from its submission.json: rebuild
    it); 2: bad usage, unknown or changed host key, login refused; 3: some could not be pushed within the
    budget (they stay queued for the next run).
    """
    import contextlib
    import time

    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from cohortpool.transport import (
        DestinationError,
        ManifestError,
        OutboxBusyError,
        Pusher,
        SubmissionDamagedError,
        TransientError,
        describe,
        opener,
        read_listing,
    )
    from cohortpool.transport import outbox as queue

    if not args:
        raise fail("give DEST (and submission folders, or --outbox DIR)")
    dest, sources = args[-1], [Path(a) for a in args[:-1]]
    if not sources and outbox is None:
        raise fail("nothing to push: give SUBMISSION_DIR(s) before DEST, or --outbox DIR")
    if outbox is not None and not outbox.is_dir():
        raise fail(f"--outbox {outbox}: no such folder")
    try:
        open_destination = opener(dest, known_hosts, identity)
        where = describe(dest)
    except DestinationError as exc:
        raise fail(str(exc)) from None
    for source in sources:
        try:
            read_listing(source)
        except ManifestError as exc:
            raise fail(f"{source}: {exc}; a submission is the output folder of `cohortpool deid`") from None

    console = Console(stderr=True)
    exit_code = EXIT_OK

    def retrying(error: TransientError, wait: float) -> None:
        console.print(f"warning: {error}; trying again in {wait:.0f} s", highlight=False)

    try:
        with queue.locked(outbox) if outbox is not None else contextlib.nullcontext():
            todo = list(dict.fromkeys([*sources, *(queue.pending(outbox, where) if outbox else [])]))
            if not todo:
                typer.echo(f"nothing to push: every submission in {outbox} is at {where}")
            total = sum(_listed_bytes(folder) for folder in todo)
            pusher = Pusher(open_destination, budget_minutes * 60, on_retry=retrying)
            columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
            progress = Progress(*columns, console=console, transient=True, disable=not console.is_terminal)
            with contextlib.closing(pusher), progress as bar:
                task = bar.add_task("pushing", total=total)
                for folder in todo:
                    if pusher.out_of_time and exit_code == EXIT_NOT_PUSHED:
                        typer.echo(f"not pushed {folder}: the time budget is spent; still queued", err=True)
                        continue
                    started = time.monotonic()
                    try:
                        result = pusher.push(folder, on_bytes=lambda n: bar.advance(task, n))
                    except (SubmissionDamagedError, ManifestError) as exc:
                        typer.echo(f"refused {folder}: {exc}; rebuild this night and push again", err=True)
                        exit_code = max(exit_code, EXIT_ISSUES)
                        continue
                    except TransientError as exc:
                        typer.echo(f"not pushed {folder}: {exc}; it stays queued for the next run", err=True)
                        exit_code = EXIT_NOT_PUSHED
                        continue
                    typer.echo(_done_line(result, where, time.monotonic() - started))
                    if outbox is not None and folder.resolve().parent.parent == outbox.resolve():
                        queue.record(outbox, result, where)
    except (DestinationError, OutboxBusyError) as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(exit_code)


def _listed_bytes(folder: Path) -> int:
    from cohortpool.transport import ManifestError, read_listing

    try:
        listing = read_listing(folder)
    except ManifestError:
        return 0
    return sum(f.size or 0 for f in listing.files.values())
