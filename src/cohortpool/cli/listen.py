"""`cohortpool listen` (C-STORE receiver) and `cohortpool fetch` (one-off pull from a PACS).

Both write into the site drop shape of the landing folder (``<landing>/<site>/<YYYY-MM-DD>/dicom/``);
the nightly site flow then takes the new nights from there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from cohortpool.cli._app import (
    EXIT_FAILED,
    EXIT_ISSUES,
    EXIT_OK,
    EXIT_USAGE,
    app,
    declared_site,
    read_settings,
)

#: 1 MiB; the limits below are given in MiB
MIB = 1 << 20

LandingOpt = Annotated[
    Path, typer.Option("--landing", help="Landing folder; files go to <landing>/<site>/<YYYY-MM-DD>/dicom/.")
]
SiteOpt = Annotated[
    str | None,
    typer.Option("--site", help="Site id the data belongs to (default: the only configured site)."),
]
NightOpt = Annotated[
    str | None, typer.Option("--night", help="Night folder YYYY-MM-DD (default: today's local date).")
]


def _site(site: str | None) -> str:
    """The site to store under: the one given (declared in the registry), or the only declared one;
    exit 2 if undeclared or ambiguous, before any state changes."""
    settings = read_settings()
    if site is not None:
        return declared_site(settings, site).site_id
    sites = [s.site_id for s in settings.sites]
    if len(sites) == 1:
        return sites[0]
    typer.echo(
        f"error: pass --site: the configuration lists {len(sites)} sites ({', '.join(sites)}); storing "
        "under the wrong site would mix hospitals' data",
        err=True,
    )
    raise typer.Exit(EXIT_USAGE)


def _unmake(landing: Path, made: bool) -> None:
    """Remove the landing folder this run made, if nothing arrived in it (exit 2 changes nothing)."""
    if made and Path(landing).is_dir() and not any(Path(landing).iterdir()):
        Path(landing).rmdir()


@app.command()
def listen(
    landing: LandingOpt,
    port: Annotated[int, typer.Option("--port", help="TCP port (0 picks a free one and prints it).")] = 11112,
    ae_title: Annotated[str, typer.Option("--ae-title", help="This receiver's AE title.")] = "COHORTPOOL",
    site: SiteOpt = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on; 0.0.0.0 for modalities on other machines.")
    ] = "127.0.0.1",
    night: NightOpt = None,
    allow_aet: Annotated[
        list[str] | None,
        typer.Option("--allow-aet", help="Only accept these calling AE titles (repeatable)."),
    ] = None,
    # defaults (None) are ListenerLimits' own, named in the help; cohortpool.ingest is imported only
    # when `listen` runs, so every other verb starts without it (a test checks the help matches)
    max_instance_mb: Annotated[
        int | None,
        typer.Option(
            "--max-instance-mb",
            min=1,
            show_default=False,
            help="Refuse (status A700) an instance larger than this many MiB (default 2048).",
        ),
    ] = None,
    max_association_instances: Annotated[
        int | None,
        typer.Option(
            "--max-association-instances",
            min=1,
            show_default=False,
            help="Instances one association may store; the rest are refused (default 50000).",
        ),
    ] = None,
    max_association_mb: Annotated[
        int | None,
        typer.Option(
            "--max-association-mb",
            min=1,
            show_default=False,
            help="MiB one association may store; the rest are refused (default 102400).",
        ),
    ] = None,
) -> None:
    """Receive DICOM instances over C-STORE into the landing folder until Ctrl-C.

    Each instance is written to disk as it arrives (memory stays bounded whatever its size) and renamed
    into place as <landing>/<site>/<night>/dicom/<study>/<series>/<sop>.dcm once complete. An instance
    over --max-instance-mb, or past what one association may store, is refused with status A700 (out of
    resources) and nothing of it is kept. On a terminal, a line per association gives its counts.
    """
    from rich.console import Console

    from cohortpool.ingest.association import AssociationSummary, ListenerLimits
    from cohortpool.ingest.listener import Listener, ListenerStats, private_spool, serve

    site_id = _site(site)
    console = Console(stderr=True)
    status = console.status("waiting for associations")
    given = {
        "max_instance_bytes": None if max_instance_mb is None else max_instance_mb * MIB,
        "max_instances": max_association_instances,
        "max_bytes": None if max_association_mb is None else max_association_mb * MIB,
    }
    limits = ListenerLimits(**{k: v for k, v in given.items() if v is not None})

    def association_done(summary: AssociationSummary) -> None:
        # a terminal only: logs and pipes stay quiet (a listener runs for months)
        if console.is_terminal:
            console.print(summary.line(), markup=False, highlight=False)

    def ready(listener: Listener) -> None:
        # stdout, one line, flushed: scripts and tests read the actual port from it
        typer.echo(
            f"listening on {listener.host}:{listener.port} as AE {listener.ae_title}, storing into "
            f"{landing}/{site_id}/ (Ctrl-C to stop)"
        )
        status.start()

    def tick(stats: ListenerStats) -> None:
        status.update(
            f"stored {stats.stored} instances ({stats.bytes / 1e6:.1f} MB), rejected {stats.rejected}"
        )

    made = not Path(landing).exists()  # bad usage must leave no landing folder behind
    try:
        with private_spool(landing):
            stats = serve(
                landing,
                site_id,
                port=port,
                host=host,
                ae_title=ae_title,
                night=night,
                allowed_aets=allow_aet or (),
                limits=limits,
                on_association=association_done,
                on_ready=ready,
                on_tick=tick,
            )
    except ValueError as exc:
        _unmake(landing, made)
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    except OSError as exc:
        _unmake(landing, made)
        typer.echo(f"error: cannot listen on {host}:{port}: {exc}; choose another --port", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    finally:
        status.stop()
    typer.echo(
        f"stopped: stored {stats.stored} instances, rejected {stats.rejected}, "
        f"{stats.associations} associations"
    )
    raise typer.Exit(EXIT_ISSUES if stats.rejected else EXIT_OK)


@app.command()
def fetch(
    source_url: Annotated[
        str,
        typer.Argument(help="Orthanc REST root (http://host:8042) or DICOMweb root (.../dicom-web)."),
    ],
    landing: LandingOpt,
    site: SiteOpt = None,
    state_dir: Annotated[
        Path | None,
        typer.Option("--state-dir", help="Watermarks and ledger (default: <landing>/.cohortpool)."),
    ] = None,
    protocol: Annotated[
        str, typer.Option("--protocol", help="auto, orthanc (change log + REST) or dicomweb (QIDO/WADO-RS).")
    ] = "auto",
    night: NightOpt = None,
    full: Annotated[
        bool, typer.Option("--full", help="Ignore the watermark: list every study (held ones are skipped).")
    ] = False,
    overlap_days: Annotated[
        int, typer.Option("--overlap-days", help="DICOMweb: days before the last run the query starts.")
    ] = 7,
    retry_refused: Annotated[
        bool,
        typer.Option(
            "--retry-refused",
            help="Judge the instances refused before again (after they were fixed at the PACS).",
        ),
    ] = False,
) -> None:
    """Pull the studies that are new since the last successful run from a PACS into the landing folder.

    Exit code 0 when everything came through, 1 when an instance was refused as unusable (recorded, named
    by its PACS URL with UIDs hashed; the watermark moves past it), 2 on bad usage, 3 when the PACS could
    not be reached or failed some study (the watermark stays; run again later).
    """
    from rich.progress import Progress

    from cohortpool.ingest import SourceError, fetch_new_studies
    from cohortpool.ingest.fetch import Protocol

    site_id = _site(site)
    if protocol not in ("auto", "orthanc", "dicomweb"):
        typer.echo(f"error: --protocol {protocol!r} must be auto, orthanc or dicomweb", err=True)
        raise typer.Exit(EXIT_USAGE)
    with Progress(transient=True) as bar:
        task = bar.add_task("fetching studies", total=None)
        try:
            result = fetch_new_studies(
                source_url,
                landing,
                site_id,
                state_dir or Path(landing) / ".cohortpool",
                night=night,
                protocol=cast(Protocol, protocol),
                full=full,
                overlap_days=overlap_days,
                retry_refused=retry_refused,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_USAGE) from exc
        except SourceError as exc:  # the PACS cannot be reached or answers wrongly: the stage failed
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_FAILED) from exc
    refused_before = (
        f", {result.instances_refused_before} refused before and unchanged (skipped)"
        if result.instances_refused_before
        else ""
    )
    typer.echo(
        f"{result.source}: {result.studies_found} studies changed, {result.instances_written} instances "
        f"written into {result.night_dir}, {result.instances_already_held} already held, "
        f"{len(result.refused)} refused{refused_before}"
    )
    for refusal in result.refused:
        typer.echo(refusal, err=True)
    for failure in result.failures:
        typer.echo(f"failed: {failure}", err=True)
    if not result.ok:  # the PACS failed: the stage failed, whatever was refused besides
        typer.echo(f"{len(result.failures)} failures: the watermark was not moved; run again later", err=True)
        raise typer.Exit(EXIT_FAILED)
    if result.refused:
        typer.echo(
            f"{len(result.refused)} instances refused (recorded; the watermark moved past them)", err=True
        )
        raise typer.Exit(EXIT_ISSUES)
