"""`cohortpool report`: the analysis plan run on the published warehouse, written as a report folder.

The glue between the warehouse, the statistics engine and the report writer lives in
:mod:`cohortpool.pipeline.report`, shared with the flows' report task. The report reads the
published copy (``published/warehouse.duckdb`` beside the warehouse, which ``cohortpool load`` refreshes)
unless ``--db`` names another file, so a report never waits for a load or makes one wait.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cohortpool.cli._app import EXIT_ISSUES, EXIT_OK, EXIT_USAGE, app, read_settings
from cohortpool.cli._app import fail as _fail
from cohortpool.contract import resources


@app.command("report")
def report_command(
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="Warehouse to read (default: the published copy of the `warehouse` setting, "
            "published/warehouse.duckdb beside it).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder to write the report into (default: <data_dir>/report)."),
    ] = None,
    plan_file: Annotated[
        Path | None,
        typer.Option("--plan", help="Analysis plan YAML (default: plans/vcf_study.yaml)."),
    ] = None,
) -> None:
    """Run the analysis plan on the warehouse and write the report folder.

    Writes report.html (one self-contained file), tables/*.csv and tables.xlsx, all small-cell
    suppressed and fit to leave the hub, dictionary.html (the warehouse's data dictionary, linked from
    the report), and internal/ (unsuppressed tables, SPSS .sav analysis sets) which must stay inside it.
    The same warehouse and plan give byte-identical files.
    Exit 0 when written, 1 when the warehouse holds no patients to analyse, 2 on bad usage or a missing
    warehouse or plan.
    """
    import duckdb
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from cohortpool.pipeline.report import PlanError, WarehouseError, generate
    from cohortpool.warehouse import published_path

    settings = read_settings()
    db_path = db or published_path(settings.warehouse)
    out_dir = out or settings.data_dir / "report"
    plan_path = plan_file or resources.plan_path()
    if db is None and not db_path.exists():
        raise _fail(
            f"no published warehouse at {db_path}: `cohortpool load` publishes it after each load; run "
            f"`cohortpool db publish` to publish {settings.warehouse} now, or pass --db",
            EXIT_USAGE,
        )
    created = not out_dir.exists()
    dictionary = out_dir / "dictionary.html"

    def fail(message: str, code: int) -> typer.Exit:
        dictionary.unlink(missing_ok=True)  # a report folder without a report is no report
        if created and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()
        return _fail(message, code)

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as progress:
        progress.add_task(f"{db_path} -> plan {plan_path.name} -> {out_dir}", total=None)
        try:
            files = generate(db_path, out_dir, plan_path, threshold=settings.small_cell_threshold)
        except PlanError as exc:
            raise fail(f"{exc} (pass --plan FILE)", EXIT_USAGE) from exc
        except WarehouseError as exc:
            raise fail(str(exc), EXIT_USAGE) from exc
        except duckdb.Error as exc:
            # a read-only report never migrates: an older warehouse lacks the columns the report reads
            raise fail(
                f"{db_path}: cannot read the analysis views ({type(exc).__name__}: {exc}); if the warehouse "
                f"was made by an older cohortpool, run `cohortpool db migrate --db {db_path}` (and "
                "`cohortpool db publish`)",
                EXIT_USAGE,
            ) from exc
    if files is None:
        raise fail(
            f"{db_path} holds no patients to analyse (none loaded yet, or every one withdrawn): "
            "nothing to report",
            EXIT_ISSUES,
        )
    typer.echo(f"report: {files.html}")
    typer.echo(f"tables: {files.xlsx} and {len(files.csvs)} CSV files in {out_dir / 'tables'}")
    typer.echo(f"data dictionary: {dictionary}")
    typer.echo(f"internal (keep inside the hub): {out_dir / 'internal'}")
    raise typer.Exit(EXIT_OK)
