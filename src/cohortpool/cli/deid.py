"""`cohortpool deid`: turn one night's site drop into a submission that may leave the hospital.

Every refusal (bad arguments, an undeclared site, a weak or unexpected key, a misplaced vault, an unknown
profile option) happens before anything is written, so a refused command leaves an earlier submission
byte for byte as it was.
"""

from __future__ import annotations

import datetime as dt
import os
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cohortpool.cli._app import EXIT_ISSUES, EXIT_OK, app, declared_site, fail, read_settings
from cohortpool.config import MissingSecretError, SiteConfig, WeakSecretError
from cohortpool.contract.identifiers import NIGHT, check_site_id

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from cohortpool.pipeline.runconfig import RunConfig
    from cohortpool.pipeline.site import PackagedNight


def _today(site: SiteConfig) -> tuple[str, str]:
    """Today's date where the site is (its registry ``timezone``, else this machine's), and the zone."""
    if site.timezone is not None:
        return dt.datetime.now(zoneinfo.ZoneInfo(site.timezone)).date().isoformat(), site.timezone
    now = dt.datetime.now().astimezone()
    return now.date().isoformat(), f"this machine's time zone, {now.tzname()}"


def _night(in_dir: Path, night: str | None, site: SiteConfig) -> tuple[str, str | None]:
    """The night to file the drop under, and a note when it was not given (today, where the site is)."""
    folder = in_dir.resolve().name
    from_folder = folder if NIGHT.match(folder) else None
    if night and from_folder and night != from_folder:
        raise fail(f"--night {night} disagrees with the drop folder's night {from_folder}")
    chosen = night or from_folder
    note = None
    if chosen is None:
        chosen, zone = _today(site)
        note = (
            f"note: {in_dir} is not named YYYY-MM-DD: filed as night {chosen}, today in {zone} "
            "(pass --night YYYY-MM-DD to choose)"
        )
    try:
        dt.date.fromisoformat(chosen)
    except ValueError:
        raise fail(f"night {chosen!r} is not a date YYYY-MM-DD") from None
    return chosen, note


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
    in_dir: Path,
    out_dir: Path,
    vault_dir: Path,
    site: str,
    night: str,
    config: RunConfig,
    workers: int,
    bar: Progress,
    task: TaskID,
) -> PackagedNight:
    """Run the site hop under the progress bar; refusals exit 2, a full disk exits 3."""
    bar.update(task, description="loading the de-identification libraries")
    from cohortpool.deid import VaultError
    from cohortpool.pipeline.runconfig import run_secret
    from cohortpool.pipeline.site import OutputWriteError, package_site_night

    def progress(done: int, total: int) -> None:
        # after the last file come the tables, the imaging manifest and the submission's checksums
        what = "de-identifying DICOM files" if done < total else "pseudonymising tables, packaging"
        bar.update(task, description=what, completed=done, total=total)

    try:
        bar.update(task, description="listing the drop's files")
        return package_site_night(
            in_dir,
            out_dir,
            vault_dir,
            site,
            night,
            config,
            run_secret(config),
            workers=workers,
            progress=progress,
        )
    except (VaultError, MissingSecretError, KeyError) as exc:  # KeyError: an undeclared site
        raise fail(str(exc)) from None
    except OutputWriteError as exc:  # a full or failing disk: the run failed, nothing was released
        raise fail(exc.strerror or str(exc), 3) from None
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
    site: Annotated[str, typer.Option("--site", help="Site id, declared in cohortpool.yaml (sites).")],
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
        str | None,
        typer.Option(
            "--night", help="Night YYYY-MM-DD (default: the folder's name, else today at the site)."
        ),
    ] = None,
) -> None:
    """De-identify a site drop (DICOM PS3.15 Annex E profile) and pseudonymise its tables.

    OUT_DIR gets de-identified DICOM, imaging_manifest.csv, clinical.csv, reads.csv and
    submission.json (with the consortium key's fingerprint); the vault gets the ledger, crosswalk and
    quarantined originals.

    The site must be declared in cohortpool.yaml; a key_fingerprint pinned there must be the secret's.
    A drop folder not named YYYY-MM-DD is filed under today's date in the site's time zone.

    Exit 0: all de-identified; 1: something quarantined, withheld or a table failed; 2: bad usage or
    configuration (nothing written); 3: the disk failed (nothing released).
    """
    # pydicom imports numpy, whose OpenBLAS starts a thread per core at import; de-identification does
    # no linear algebra, and those threads would only compete with the worker processes for the cores
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeRemainingColumn

    from cohortpool.pipeline.runconfig import RunConfig

    _check_usage(in_dir, out_dir, site, secret_file)
    settings = read_settings(secret_file=secret_file)
    entry = declared_site(settings, site)
    the_night, note = _night(in_dir, night, entry)
    try:
        config = RunConfig.from_settings(settings, require_key=True)
        config.site(site).check_key(config.key_fingerprint or "")
    except WeakSecretError as exc:
        raise fail(str(exc)) from None
    except MissingSecretError as exc:
        raise fail(f"{exc}; or pass --secret-file FILE") from None
    vault_dir = vault if vault is not None else settings.vault_dir / site
    if note:
        typer.echo(note, err=True)
    console = Console(stderr=True)
    # a live bar on a terminal only: a log file gets the summary lines, not a thousand redraws
    with Progress(
        SpinnerColumn(),
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        task = bar.add_task("starting", total=None)
        packaged = _package(
            in_dir, out_dir, vault_dir, site, the_night, config, workers or config.workers, bar, task
        )
    raise typer.Exit(_report(packaged, site, the_night, vault_dir))
