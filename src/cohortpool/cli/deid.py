"""`cohortpool deid`: turn one night's site drop into a submission that may leave the hospital."""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Annotated

import typer

from cohortpool.cli._app import EXIT_ISSUES, EXIT_OK, EXIT_USAGE, app
from cohortpool.config import MissingSecretError, SiteConfig, load_settings

_NIGHT = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _night(in_dir: Path, night: str | None) -> str:
    folder = in_dir.resolve().name
    from_folder = folder if _NIGHT.match(folder) else None
    chosen = night or from_folder
    if chosen is None:
        raise _fail(f"cannot tell the night: {in_dir} is not named YYYY-MM-DD; pass --night YYYY-MM-DD")
    if night and from_folder and night != from_folder:
        raise _fail(f"--night {night} disagrees with the drop folder's night {from_folder}")
    try:
        dt.date.fromisoformat(chosen)
    except ValueError:
        raise _fail(f"night {chosen!r} is not a date YYYY-MM-DD") from None
    return chosen


def _inside(child: Path, parent: Path) -> bool:
    return child.resolve().is_relative_to(parent.resolve())


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
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from cohortpool.deid import QUARANTINED, VaultError
    from cohortpool.nightly.package import OutputWriteError, package_site_night

    try:
        SiteConfig(site_id=site)
    except ValueError as exc:
        raise _fail(f"--site: {exc.errors()[0]['msg'] if hasattr(exc, 'errors') else exc}") from None
    if not in_dir.is_dir():
        raise _fail(f"{in_dir} is not a folder")
    if _inside(out_dir, in_dir) or _inside(in_dir, out_dir):
        raise _fail(f"{out_dir} and {in_dir} must not contain one another")
    the_night = _night(in_dir, night)
    if secret_file is not None and not secret_file.is_file():
        raise _fail(f"--secret-file {secret_file} does not exist")
    try:
        settings = load_settings(secret_file=secret_file)
        secret = settings.secret_bytes()
    except MissingSecretError as exc:
        raise _fail(str(exc)) from None
    except ValueError as exc:
        raise _fail(f"invalid configuration: {exc}") from None
    vault_dir = vault if vault is not None else settings.vault_dir / site
    n_workers = workers or settings.workers

    try:
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            transient=True,
        ) as bar:
            task = bar.add_task("de-identifying", total=None)
            packaged = package_site_night(
                in_dir,
                out_dir,
                vault_dir,
                site,
                the_night,
                settings,
                secret,
                workers=n_workers,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except VaultError as exc:
        raise _fail(str(exc)) from None
    except OutputWriteError as exc:  # a full or failing disk: the run failed, nothing was released
        typer.echo(f"error: {exc.strerror}", err=True)
        raise typer.Exit(EXIT_ISSUES) from None
    except ValueError as exc:  # an unknown profile option in the configuration
        raise _fail(f"invalid de-identification configuration: {exc}") from None

    result, counts, privacy = packaged.deid, packaged.counts, packaged.privacy
    failed = False
    if not packaged.has_tables:
        typer.echo(f"note: {packaged.table_error}", err=True)
    elif packaged.table_error is not None:
        typer.echo(f"error: {packaged.table_error}", err=True)
        failed = True
    typer.echo(f"k-anonymity {privacy.k} over age_years, sex, site_id, first_exam_date")
    if privacy.blocked:
        typer.echo(f"error: release blocked: {privacy.reason()}", err=True)
        failed = True

    summary = ", ".join(f"{k} {v}" for k, v in counts.items())
    typer.echo(f"{site} {the_night}: {summary}")
    for kind, n in result.reasons.items():
        typer.echo(f"  quarantined ({kind}): {n}")
    if result.count(QUARANTINED):
        typer.echo(f"quarantined originals and reasons: {vault_dir} (ledger/{the_night}.csv)")
    raise typer.Exit(EXIT_ISSUES if failed or result.count(QUARANTINED) else EXIT_OK)
