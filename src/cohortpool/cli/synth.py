"""`cohortpool synth`: write a synthetic consortium's night of hospital exports."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from cohortpool.cli._app import EXIT_USAGE, app


def _night(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"--night must be YYYY-MM-DD, got {value!r}") from exc


@app.command()
def synth(
    out_dir: Annotated[
        Path, typer.Argument(help="Landing folder: <site>/<night>/ drops and _truth.json go here.")
    ],
    sites: Annotated[
        int, typer.Option(min=1, max=99, help="Number of sites (site01 is the paper's cohort).")
    ] = 3,
    seed: Annotated[int, typer.Option(min=0, help="Same seed, byte-identical output.")] = 7,
    full_size: Annotated[
        bool, typer.Option("--full-size", help="512x512 CT, realistic series lengths (for benchmarks).")
    ] = False,
    night: Annotated[
        str | None, typer.Option(help="Export night YYYY-MM-DD (default 2025-03-01, fixed for determinism).")
    ] = None,
    max_patients: Annotated[
        int | None, typer.Option(min=1, help="Keep only the first N patients per site (benchmarks).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Write per-site drops (DICOM full of PHI, clinical.csv, reads.csv) and the planted-defect truth file."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from cohortpool.synth import write_consortium

    when = _night(night)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        disable=as_json,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def report(site_id: str, done: int, total: int) -> None:
            if site_id not in tasks:
                tasks[site_id] = bar.add_task(f"{site_id} patients", total=total)
            bar.update(tasks[site_id], completed=done)

        try:
            summary = write_consortium(
                out_dir,
                sites=sites,
                seed=seed,
                full_size=full_size,
                night=when,
                max_patients=max_patients,
                progress=report,
            )
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_USAGE) from exc
    if as_json:
        typer.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    for site in summary["sites"]:
        typer.echo(
            f"{site['site_id']}: {site['patients']} patients "
            f"({site['patients_op']} OP / {site['patients_met']} MET), "
            f"{site['vertebrae']} vertebrae, {site['reads_rows']} reads, {site['dicom_files']} files, "
            f"{site['defects']} planted defects -> {site['drop']}"
        )
    typer.echo(f"truth: {summary['truth']} ({summary['defects']} planted defects)")
