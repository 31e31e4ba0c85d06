"""Benchmark: the whole VCF analysis plan on 10^6 patients / 10^7 reads, aggregation in DuckDB.

Two ways to feed ``run_plan`` the same warehouse, timed side by side in one run:

* ``duckdb``: the heavy aggregation (10^7 reads -> detection pattern counts) runs in DuckDB through
  ``sql/analysis/agg_detection_patterns.sql``; only patients (10^6 rows), vertebrae and a few thousand pattern
  counts reach pandas.
* ``pandas`` (the peer: what a pandas-only pipeline does): the read-level view is fetched as a DataFrame and
  ``run_plan`` pivots it to patterns itself.

Both must give identical result tables (checked). Usage::

    .venv/bin/python -m benchmarks.bench_stats [--patients 1000000] [--repeats 3] [--skip-pandas]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import pandas as pd

from cohortpool.contract import resources
from cohortpool.stats.engine import run_plan
from cohortpool.stats.plan import load_plan
from cohortpool.warehouse.sql import query_df

GENERATOR = Path(__file__).with_name("sql") / "make_stats_views.sql"


def _connect(path: Path, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute("SET enable_progress_bar = false")  # keep the benchmark log readable
    return con


def make_warehouse(path: Path, patients: int) -> float:
    """Write the synthetic analysis tables; returns seconds taken (not part of the timed analysis)."""
    start = time.perf_counter()
    con = _connect(path, read_only=False)
    for statement in duckdb.extract_statements(GENERATOR.read_text(encoding="utf-8")):
        params = {name: patients for name in statement.named_parameters}
        con.execute(statement, params) if params else con.execute(statement)
    con.close()
    return time.perf_counter() - start


def run_duckdb(path: Path) -> tuple[float, dict[str, float], dict[str, pd.DataFrame]]:
    """The analysis as the pipeline runs it: heavy aggregation in DuckDB, tests in Python."""
    plan = load_plan(resources.plan_path())
    det = plan.detection[0].model_copy(update={"view": "detection_patterns"})
    plan = plan.model_copy(update={"detection": (det,)})
    phases: dict[str, float] = {}
    start = time.perf_counter()
    con = _connect(path)
    frames = {
        "patients": con.table("analysis.patients").df(),
        "vertebrae": con.table("analysis.vertebrae").df(),
    }
    phases["fetch patients+vertebrae"] = time.perf_counter() - start
    t = time.perf_counter()
    frames["detection_patterns"] = query_df(con, "analysis/agg_detection_patterns")
    phases["duckdb detection patterns"] = time.perf_counter() - t
    con.close()
    t = time.perf_counter()
    results = run_plan(plan, frames)
    phases["run_plan"] = time.perf_counter() - t
    return time.perf_counter() - start, phases, {r.name: r.frame for r in results}


def run_pandas(path: Path) -> tuple[float, dict[str, float], dict[str, pd.DataFrame]]:
    """The peer: every view fetched whole into pandas, the reads pivoted there."""
    plan = load_plan(resources.plan_path())
    phases: dict[str, float] = {}
    start = time.perf_counter()
    con = _connect(path)
    frames = {
        name: con.table(f"analysis.{name}").df() for name in ("patients", "vertebrae", "vertebra_reads")
    }
    con.close()
    phases["fetch all views"] = time.perf_counter() - start
    t = time.perf_counter()
    results = run_plan(plan, frames)
    phases["run_plan (pandas pivots reads)"] = time.perf_counter() - t
    return time.perf_counter() - start, phases, {r.name: r.frame for r in results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-pandas", action="store_true")
    args = parser.parse_args()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"load average before the run: {load} ({os.cpu_count()} CPUs)")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        gen = make_warehouse(db, args.patients)
        con = _connect(db)
        n_reads = con.table("analysis.vertebra_reads").count("*").fetchall()[0][0]
        con.close()
        print(f"warehouse: {args.patients:,} patients, {n_reads:,} reads (generated in {gen:.1f} s)")
        totals: dict[str, list[float]] = {"duckdb": []}
        last: dict[str, dict[str, pd.DataFrame]] = {}
        for i in range(args.repeats):
            cpu = time.process_time()
            total, phases, out = run_duckdb(db)
            phases["process CPU (all threads)"] = time.process_time() - cpu
            totals["duckdb"].append(total)
            last["duckdb"] = out
            print(
                f"duckdb run {i + 1}: {total:.1f} s  "
                + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items())
            )
        if not args.skip_pandas:
            totals["pandas"] = []
            for i in range(args.repeats):
                cpu = time.process_time()
                total, phases, out = run_pandas(db)
                phases["process CPU (all threads)"] = time.process_time() - cpu
                totals["pandas"].append(total)
                last["pandas"] = out
                print(
                    f"pandas run {i + 1}: {total:.1f} s  "
                    + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items())
                )
            for name in ("table3_rates", "table3_paired", "table1", "table2", "accuracy"):
                pd.testing.assert_frame_equal(last["duckdb"][name], last["pandas"][name], check_dtype=False)
            print("results identical: yes")
        med = {k: statistics.median(v) for k, v in totals.items()}
        print(f"load average after the run: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        print("median seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()))
        if "pandas" in med:
            print(f"ratio pandas / duckdb: {med['pandas'] / med['duckdb']:.2f}")


if __name__ == "__main__":
    main()
