"""`cohortpool report`: the analysis plan run on the warehouse, written as a report folder.

This module is the glue between three stages that never import each other: it opens the warehouse
read-only, fetches the analysis views as DataFrames, hands them to the statistics engine, and gives the
results to the report writer.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cohortpool.cli._app import EXIT_ISSUES, EXIT_OK, EXIT_USAGE, app
from cohortpool.config import load_settings

if TYPE_CHECKING:
    import pandas as pd

    from cohortpool.report.build import ReportFiles
    from cohortpool.stats.plan import Plan

#: views every report reads besides the plan's own: provenance (batch ids) and the SPSS analysis sets
REPORT_VIEWS = ("patients", "vertebrae", "vertebra_reads")
#: views the warehouse serves (a plan may also name pre-aggregated forms the warehouse does not have)
WAREHOUSE_VIEWS = ("patients", "vertebra_reads", "vertebrae", "findings_long")


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def views_for(plan: Plan) -> list[str]:
    """The warehouse views to fetch: those the plan reads plus the report's own, in a fixed order."""
    named = {d.view for d in plan.derived} | {c.view for c in plan.comparisons}
    named |= {d.view for d in plan.detection} | {a.view for a in plan.accuracy}
    wanted = named | set(REPORT_VIEWS)
    return [v for v in WAREHOUSE_VIEWS if v in wanted]


def fetch(db_path: Path, views: list[str]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The analysis views (every row, in a fixed order) and the last night's quality summary."""
    from cohortpool.warehouse import connect, sql

    con = connect(db_path, read_only=True)
    try:
        frames = {
            view: sql.query_df(con, "report/select_view", identifiers={"view": f"analysis.{view}"})
            for view in views
        }
        quality = sql.query_df(con, "report/quality_last_night")
    finally:
        con.close()
    return frames, quality


def generate(
    db_path: Path,
    out_dir: Path,
    plan_path: Path,
    *,
    threshold: int,
    warehouse_sha256: str | None = None,
    plan_sha256: str | None = None,
) -> ReportFiles | None:
    """Warehouse -> ``run_plan`` -> report folder; None when the warehouse holds no patients yet.

    The one glue path shared by ``cohortpool report`` and the hub flow's report task, so both write the
    same bytes for the same warehouse. Raises the plan's ``PlanError``, the warehouse's
    ``WarehouseError`` or ``duckdb.Error`` for the caller to turn into its own exit or failure.
    """
    from cohortpool.report.build import write_report
    from cohortpool.report.provenance import Provenance, batches_by_site, library_versions, sha256_file
    from cohortpool.report.quality import quality_table
    from cohortpool.stats.engine import run_plan
    from cohortpool.stats.plan import load_plan
    from cohortpool.warehouse import checksum

    plan = load_plan(plan_path)
    frames, summary = fetch(db_path, views_for(plan))
    if frames["patients"].empty:
        return None
    provenance = Provenance(
        plan_name=plan.name,
        plan_sha256=plan_sha256 or sha256_file(plan_path),
        warehouse_sha256=warehouse_sha256 or checksum(db_path),
        batches=batches_by_site(frames),
        libraries=library_versions(),
    )
    return write_report(
        run_plan(plan, frames),
        frames,
        out_dir,
        provenance=provenance,
        quality=quality_table(summary),
        threshold=threshold,
        title=plan.title,
    )


@app.command("report")
def report_command(
    db: Annotated[
        Path | None,
        typer.Option("--db", help="DuckDB warehouse file (default: the `warehouse` setting)."),
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
    suppressed and fit to leave the hub, and internal/ (unsuppressed tables, SPSS .sav analysis sets)
    which must stay inside it. The same warehouse and plan give byte-identical files.
    Exit 0 when written, 1 when the warehouse holds no patients to analyse, 2 on bad usage or a missing
    warehouse or plan.
    """
    import duckdb
    from rich.progress import Progress, SpinnerColumn, TextColumn

    from cohortpool.stats.plan import PlanError
    from cohortpool.warehouse import WarehouseError

    try:
        settings = load_settings()
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise _fail(f"invalid configuration: {exc}", EXIT_USAGE) from exc
    db_path = db or settings.warehouse
    out_dir = out or settings.data_dir / "report"
    plan_path = plan_file or settings.plans_dir / "vcf_study.yaml"

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), transient=True) as progress:
        progress.add_task(f"{db_path} -> plan {plan_path.name} -> {out_dir}", total=None)
        try:
            files = generate(db_path, out_dir, plan_path, threshold=settings.small_cell_threshold)
        except PlanError as exc:
            raise _fail(f"{exc} (pass --plan FILE)", EXIT_USAGE) from exc
        except WarehouseError as exc:
            raise _fail(str(exc), EXIT_USAGE) from exc
        except duckdb.Error as exc:
            # a read-only report never migrates: an older warehouse lacks the columns the report reads
            raise _fail(
                f"{db_path}: cannot read the analysis views ({type(exc).__name__}: {exc}); if the warehouse "
                f"was made by an older cohortpool, run `cohortpool db migrate --db {db_path}`",
                EXIT_USAGE,
            ) from exc
    if files is None:
        raise _fail(f"{db_path} holds no patients yet: load validated batches first", EXIT_ISSUES)
    typer.echo(f"report: {files.html}")
    typer.echo(f"tables: {files.xlsx} and {len(files.csvs)} CSV files in {out_dir / 'tables'}")
    typer.echo(f"internal (keep inside the hub): {out_dir / 'internal'}")
    raise typer.Exit(EXIT_OK)
