"""The last hop: warehouse views -> statistics engine -> report folder.

Three stages that never import each other meet here (the flows' report task and ``cohortpool report``
both call :func:`generate`, so they write the same bytes for the same warehouse).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cohortpool.contract.files import sha256_file
from cohortpool.report.build import ReportFiles, write_report
from cohortpool.report.provenance import Provenance, batches_by_site, library_versions
from cohortpool.report.quality import quality_table
from cohortpool.stats.engine import run_plan
from cohortpool.stats.plan import Plan, PlanError, load_plan
from cohortpool.warehouse import WarehouseError, checksum, connect, sql, write_dictionary_page

__all__ = ["PlanError", "ReportFiles", "WarehouseError", "generate", "views_for"]

#: views every report reads besides the plan's own: provenance (batch ids) and the SPSS analysis sets
REPORT_VIEWS = ("patients", "vertebrae", "vertebra_reads")
#: views the warehouse serves (a plan may also name pre-aggregated forms the warehouse does not have)
WAREHOUSE_VIEWS = ("patients", "vertebra_reads", "vertebrae", "findings_long")


def views_for(plan: Plan) -> list[str]:
    """The warehouse views to fetch: those the plan reads plus the report's own, in a fixed order."""
    named = {d.view for d in plan.derived} | {c.view for c in plan.comparisons}
    named |= {d.view for d in plan.detection} | {a.view for a in plan.accuracy}
    wanted = named | set(REPORT_VIEWS)
    return [v for v in WAREHOUSE_VIEWS if v in wanted]


def fetch(db_path: Path, views: list[str]) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """The analysis views (every row, in a fixed order) and the last night's quality summary."""
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
    same bytes for the same warehouse, the warehouse's data dictionary page (``dictionary.html``, which
    the report links) included. Raises the plan's ``PlanError``, the warehouse's
    ``WarehouseError`` or ``duckdb.Error`` for the caller to turn into its own exit or failure.
    """
    plan = load_plan(plan_path)
    frames, summary = fetch(db_path, views_for(plan))
    if frames["patients"].empty:
        return None
    # first, so the page links it; it depends only on the warehouse's schema
    write_dictionary_page(db_path, out_dir / "dictionary.html")
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
