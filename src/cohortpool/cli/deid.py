"""`cohortpool deid`: turn one night's site drop into a submission that may leave the hospital."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cohortpool.cli._app import EXIT_ISSUES, EXIT_OK, app, fail, read_settings
from cohortpool.config import MissingSecretError
from cohortpool.contract.identifiers import NIGHT, check_site_id

if TYPE_CHECKING:
    from cohortpool.pipeline.runconfig import RunConfig
    from cohortpool.pipeline.site import PackagedNight


def _night(in_dir: Path, night: str | None) -> str:
    folder = in_dir.resolve().name
    from_folder = folder if NIGHT.match(folder) else None
    chosen = night or from_folder
    if chosen is None:
        raise fail(f"cannot tell the night: {in_dir} is not named YYYY-MM-DD; pass --night YYYY-MM-DD")
    if night and from_folder and night != from_folder:
        raise fail(f"--night {night} disagrees with the drop folder's night {from_folder}")
    try:
        dt.date.fromisoformat(chosen)
    except ValueError:
        raise fail(f"night {chosen!r} is not a date YYYY-MM-DD") from None
    return chosen


def _inside(child: Path, parent: Path) -> bool:
    return child.resolve().is_relative_to(parent.resolve())


def _check_usage(in_dir: Path, out_dir: Path, site: str, secret_file: Path | None) -> None:
    """Refuse bad arguments before anything is read or written."""
    try:
        check_site_id(site)
    except ValueError as exc:
        raise fail(f"--site: {exc}") from None
    if not in_dir.is_dir():
        raise fail(f"{in_dir} is not a folder")
    if _inside(out_dir, in_dir) or _inside(in_dir, out_dir):
        raise fail(f"{out_dir} and {in_dir} must not contain one another")
    if secret_file is not None and not secret_file.is_file():
        raise fail(f"--secret-file {secret_file} does not exist")


def _package(
    in_dir: Path, out_dir: Path, vault_dir: Path, site: str, night: str, config: RunConfig, workers: int
) -> PackagedNight:
    """Run the site hop under a progress bar; usage-class failures exit 2, a full disk exits 1."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from cohortpool.deid import VaultError
    from cohortpool.pipeline.runconfig import run_secret
    from cohortpool.pipeline.site import OutputWriteError, package_site_night

    try:
        secret = run_secret(config)
    except MissingSecretError as exc:
        raise fail(str(exc)) from None
    try:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("de-identifying", total=None)
            return package_site_night(
                in_dir,
                out_dir,
                vault_dir,
                site,
                night,
                config,
                secret,
                workers=workers,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except VaultError as exc:
        raise fail(str(exc)) from None
    except OutputWriteError as exc:  # a full or failing disk: the run failed, nothing was released
        raise fail(exc.strerror or str(exc), EXIT_ISSUES) from None
    except ValueError as exc:  # an unknown profile option in the configuration
        raise fail(f"invalid de-identification configuration: {exc}") from None


def _report(packaged: PackagedNight, site: str, night: str, vault_dir: Path) -> int:
    """Print what happened; the exit code (1 when something was quarantined, withheld or failed)."""
    from cohortpool.deid import QUARANTINED

    result, counts, privacy = packaged.deid, packaged.counts, packaged.privacy
    failed = False
    if not packaged.has_tables:
        typer.echo(f"note: {packaged.table_error}", err=True)
    elif packaged.table_error is not None:
        typer.echo(f"error: {packaged.table_error}", err=True)
        failed = True
    for line in packaged.tables.report.lines() if packaged.tables is not None else ():
        typer.echo(f"table: {line}")
    for line in privacy.verdict():
        typer.echo(line)
    if packaged.blocked_reason is not None:
        typer.echo(f"error: release blocked: {packaged.blocked_reason}", err=True)
        failed = True
    summary = ", ".join(f"{k} {v}" for k, v in counts.items())
    typer.echo(f"{site} {night}: {summary}")
    for kind, n in result.reasons.items():
        typer.echo(f"  quarantined ({kind}): {n}")
    if result.count(QUARANTINED):
        typer.echo(f"quarantined originals and reasons: {vault_dir} (ledger/{night}.csv)")
    return EXIT_ISSUES if failed or result.count(QUARANTINED) else EXIT_OK


@app.command("deid")
def deid(
    in_dir: Annotated[Path, typer.Argument(help="One night's site drop: dicom/, clinical.csv, reads.csv.")],
    out_dir: Annotated[Path, typer.Argument(help="The submission folder (only what may leave the site).")],
    site: Annotated[str, typer.Option("--site", help="Site id (part of every pseudonym).")],
    vault: Annotated[
        Path | None, typer.Option("--vault", help="Site-private vault (default: ./vault/SITE).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="Worker processes (default: all cores).")
    ] = None,
    secret_file: Annotated[
        Path | None, typer.Option("--secret-file", help="File holding the consortium secret.")
    ] = None,
    night: Annotated[
        str | None, typer.Option("--night", help="Night YYYY-MM-DD if IN_DIR is not named so.")
    ] = None,
) -> None:
    """De-identify a site drop (DICOM PS3.15 Annex E profile) and pseudonymise its tables.

    OUT_DIR gets de-identified DICOM, imaging_manifest.csv, clinical.csv, reads.csv and
    submission.json; the vault gets the ledger, crosswalk and quarantined originals.

    Exit 0: all de-identified; 1: something quarantined or a table failed; 2: bad usage.
    """
    # pydicom imports numpy, whose OpenBLAS starts a thread per core at import; de-identification does
    # no linear algebra, and those threads would only compete with the worker processes for the cores
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from cohortpool.pipeline.runconfig import RunConfig

    _check_usage(in_dir, out_dir, site, secret_file)
    the_night = _night(in_dir, night)
    settings = read_settings(secret_file=secret_file)
    try:
        config = RunConfig.from_settings(settings, require_key=True)
    except MissingSecretError as exc:
        raise fail(str(exc)) from None
    vault_dir = vault if vault is not None else settings.vault_dir / site
    packaged = _package(in_dir, out_dir, vault_dir, site, the_night, config, workers or config.workers)
    raise typer.Exit(_report(packaged, site, the_night, vault_dir))
