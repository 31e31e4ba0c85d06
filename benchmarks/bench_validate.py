"""Validate a 10^6-row reads table three ways, side by side, and check they agree.

Paths (the issue's peers):

- ``gx-pandas``: cohortpool's path: ``read_table`` (CSV as text, then typed) + the reads suite run by GX on
  pandas (both halves) + the quarantine split; this is what ``cohortpool validate`` does per table.
- ``gx-duckdb``: the same typed-half suite pushed down into DuckDB by GX's SQL data source (SQLAlchemy +
  duckdb-engine), on a DuckDB table loaded from the same CSV. Needs ``duckdb-engine`` (bench group).
- ``duckdb-sql``: the same checks hand-translated to one DuckDB SQL query per expectation (this script
  only; cohortpool does not ship a second implementation of its suites).

Every path must find the same failing (row, check) pairs on the planted rows, or the run fails.

Usage: ``.venv/bin/python benchmarks/bench_validate.py [--rows 1000000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import cohortpool  # noqa: F401  (telemetry off before GX loads)
from cohortpool.validate.frames import read_table
from cohortpool.validate.quarantine import split_table
from cohortpool.validate.run import SuiteRunner, expectation_label
from cohortpool.validate.suites import TYPED, load_suite

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work" / "validate"
CLEAN = ROOT / "tests" / "data" / "validate" / "clean" / "reads.csv"
#: planted every PLANT_EVERY rows, cycling through these (column, value) defects
PLANTS = (("level", "L7"), ("genant_grade", "4"), ("marrow_oedema", "maybe"), ("height_loss_pct", "140"))
PLANT_EVERY = 9973


def make_reads(rows: int) -> Path:
    """A reads.csv of ``rows`` rows: the clean fixture's reads, fresh pseudonyms, planted defects."""
    path = WORK / f"reads_{rows}.csv"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    with CLEAN.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        base = list(reader)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        for n in range(rows):
            row = dict(base[n % len(base)])
            copy = n // len(base)
            row["patient_id"] = f"P{copy:016X}"
            row["accession_id"] = f"A{copy:016X}"
            row["source_row"] = str(n + 1)
            if n % PLANT_EVERY == PLANT_EVERY - 1:
                column, value = PLANTS[(n // PLANT_EVERY) % len(PLANTS)]
                row[column] = value
            writer.writerow(row)
    return path


def run_gx_pandas(csv_path: Path, runner: SuiteRunner) -> set[tuple[int, str]]:
    suite = load_suite("reads")
    frames = read_table(csv_path.parent, suite)
    table_run = runner.run(suite, frames, "site02")
    if table_run.errored:
        raise RuntimeError(f"gx-pandas: {[o.errored for o in table_run.errored]}")
    split = split_table(frames, suite, table_run.findings)
    lines = [*split.quarantine.itertuples(), *split.warnings.itertuples()]
    return {(int(r.source_row), str(r.expectation)) for r in lines}


def _load_duckdb(csv_path: Path, db_path: Path) -> None:
    import duckdb

    suite = load_suite("reads")
    casts = ", ".join(f'TRY_CAST("{c}" AS {t}) AS "{c}"' for c, t in suite.sql_types().items())
    if db_path.exists():
        db_path.unlink()
    with duckdb.connect(str(db_path)) as con:
        con.execute(
            f"CREATE TABLE reads AS SELECT {casts} FROM read_csv(?, all_varchar = true, header = true)",
            [str(csv_path)],
        )


def _sql_condition(exp: dict[str, Any]) -> str | None:
    """A SQL predicate true on the rows an expectation flags (only the types the reads suite uses)."""
    kind, kw = exp["type"], exp["kwargs"]
    col = f'"{kw["column"]}"' if "column" in kw else None

    def lit(v: Any) -> str:
        return str(v) if isinstance(v, int | float) else "'" + str(v).replace("'", "''") + "'"

    if kind == "expect_column_values_to_not_be_null":
        cond = f"{col} IS NULL"
    elif kind == "expect_column_values_to_be_in_set":
        values = kw["value_set"]
        if isinstance(values, dict):  # the suite parameter site_ids
            values = ["site02"]
        cond = f"{col} IS NOT NULL AND {col} NOT IN ({', '.join(lit(v) for v in values)})"
    elif kind == "expect_column_values_to_match_regex":
        cond = f"{col} IS NOT NULL AND NOT regexp_matches(CAST({col} AS VARCHAR), {lit(kw['regex'])})"
    elif kind == "expect_column_values_to_be_between":
        parts = []
        if kw.get("min_value") is not None:
            parts.append(f"{col} < {kw['min_value']}")
        if kw.get("max_value") is not None:
            parts.append(f"{col} > {kw['max_value']}")
        cond = f"{col} IS NOT NULL AND ({' OR '.join(parts)})"
    elif kind in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
        cols = ", ".join(f'"{c}"' for c in kw.get("column_list", [kw.get("column")]))
        cond = f"count(*) OVER (PARTITION BY {cols}) > 1"
    else:
        return None
    condition = kw.get("row_condition")
    if condition:
        cond = f"({condition.replace('==', '=').replace(chr(34), chr(39))}) AND ({cond})"
    return cond


def run_duckdb_sql(db_path: Path) -> set[tuple[int, str]]:
    import duckdb

    suite = load_suite("reads")
    found: set[tuple[int, str]] = set()
    with duckdb.connect(str(db_path), read_only=True) as con:
        for exp in suite.expectations:
            if exp["meta"].get("applies_to", TYPED) != TYPED:
                continue  # the text checks need the raw strings; see RESULTS.md
            cond = _sql_condition(exp)
            if cond is None:
                continue
            label = expectation_label(exp["type"], exp["kwargs"])
            query = f"SELECT source_row FROM (SELECT source_row, ({cond}) AS bad FROM reads) WHERE bad"
            found |= {(int(r[0]), label) for r in con.execute(query).fetchall()}
    return _keep_first_duplicate(found)


def _keep_first_duplicate(found: set[tuple[int, str]]) -> set[tuple[int, str]]:
    # the planted data has no duplicates; nothing to resolve
    return found


class _DuckDBDialect(str):
    """GX compares dialect names as strings and reads ``.value`` of its own enum members."""

    value = "duckdb"


def keep_duckdb_connection_open() -> None:
    """The fix for the GX + duckdb-engine trap, measured here (not used by cohortpool).

    GX 1.24 runs each metric query in ``with engine.connect(): result = execute(...)`` and fetches the rows
    after the ``with`` block: closing the connection rolls back, and DuckDB drops the pending result, so
    ``fetchall()`` returns nothing and the metric fails with ``IndexError``. GX already keeps one connection
    open for the dialects listed in ``_PERSISTED_CONNECTION_DIALECTS`` (sqlite, mssql, ...); adding duckdb
    there makes the results survive. A private constant: fine for a benchmark, not for production.
    """
    import great_expectations.execution_engine.sqlalchemy_execution_engine as engine_module

    dialects = engine_module._PERSISTED_CONNECTION_DIALECTS
    if "duckdb" not in dialects:
        engine_module._PERSISTED_CONNECTION_DIALECTS = (*dialects, _DuckDBDialect("duckdb"))


def _runs_on_gx_sql(exp: dict[str, Any]) -> bool:
    """Expectations of the reads suite GX 1.24 can evaluate on duckdb-engine at all.

    Not: ``expect_column_type_to_be`` (our types are pandas dtypes; GX's SQL type lookup raises KeyError),
    ``match_regex`` ("Regex is not supported for dialect duckdb"), and the pandas ``row_condition`` strings
    ("PassThroughCondition is not supported for SqlAlchemyExecutionEngine").
    """
    return (
        exp["type"] not in ("expect_column_type_to_be", "expect_column_values_to_match_regex")
        and "row_condition" not in exp["kwargs"]
    )


def run_gx_duckdb(db_path: Path, fixed: bool) -> tuple[set[tuple[int, str]], set[str]] | str:
    """GX's SQL data source on the DuckDB file: failures and the labels evaluated, or why it failed."""
    try:
        import duckdb_engine  # noqa: F401
    except ImportError:
        return "duckdb-engine not installed"
    from great_expectations.core import ExpectationSuite

    from cohortpool.validate.run import exception_message
    from cohortpool.validate.suites import ephemeral_context

    if fixed:
        keep_duckdb_connection_open()
    chosen = [
        {k: v for k, v in e.items() if k != "meta"} | {"meta": e["meta"]}
        for e in load_suite("reads").expectations
        if e["meta"].get("applies_to", TYPED) == TYPED and (not fixed or _runs_on_gx_sql(e))
    ]
    context = ephemeral_context()
    source = context.data_sources.add_sql("duckdb", connection_string=f"duckdb:///{db_path}")
    batch = source.add_table_asset("reads", table_name="reads").add_batch_definition_whole_table("all")
    gx_suite = context.suites.add(ExpectationSuite(name="reads.sql", expectations=chosen))
    result = batch.get_batch().validate(
        gx_suite,
        # second trap: on SQL, unexpected_index_list stops at partial_unexpected_count (20) even with
        # COMPLETE, silently; ask for every row
        result_format={
            "result_format": "COMPLETE",
            "unexpected_index_column_names": ["source_row"],
            "partial_unexpected_count": 10**9,
        },
        expectation_parameters={"site_ids": ["site02"]},
    )
    errors = [m for r in result.results if (m := exception_message(r.exception_info))]
    if errors:
        stats = result.statistics
        kinds = sorted({m.split(":")[0][:90] for m in errors})
        return (
            f"{len(errors)} of {len(result.results)} expectations errored "
            f"(statistics say {stats['successful_expectations']} of {stats['evaluated_expectations']} "
            f"successful); errors: {kinds}"
        )
    found: set[tuple[int, str]] = set()
    labels: set[str] = set()
    for r in result.results:
        label = expectation_label(r.expectation_config.type, r.expectation_config.kwargs)
        labels.add(label)
        for item in r.result.get("unexpected_index_list") or []:
            found.add((int(item["source_row"]), label))
    return found, labels


#: CPU seconds of the last timed call (the machine is shared: wall time depends on the other users)
CPU: dict[str, list[float]] = {}


def _timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    CPU.setdefault(fn.__name__, []).append(time.process_time() - cpu)
    return time.perf_counter() - start, out


def _fresh_db(csv_path: Path, rows: int, tag: str) -> Path:
    db_path = WORK / f"reads_{rows}_{tag}.duckdb"
    _load_duckdb(csv_path, db_path)
    return db_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    csv_path = make_reads(args.rows)
    bench_dir = WORK / f"table_{args.rows}"
    bench_dir.mkdir(exist_ok=True)
    (bench_dir / "reads.csv").unlink(missing_ok=True)
    (bench_dir / "reads.csv").symlink_to(csv_path)
    runner = SuiteRunner()
    times: dict[str, list[float]] = {"gx-pandas": [], "duckdb-load": [], "duckdb-sql": []}
    results: dict[str, Any] = {}
    notes: dict[str, str] = {}
    evaluated: dict[str, set[str]] = {}
    # GX on DuckDB out of the box, once, before the connection fix changes GX in this process
    unfixed = run_gx_duckdb(_fresh_db(csv_path, args.rows, "unfixed"), False)
    if isinstance(unfixed, str):
        notes["gx-duckdb"] = unfixed
    for repeat in range(args.repeats):
        elapsed, results["gx-pandas"] = _timed(run_gx_pandas, bench_dir / "reads.csv", runner)
        times["gx-pandas"].append(elapsed)
        # a fresh file per repeat: GX's SQL engine keeps its connection to the previous one open
        db_path = WORK / f"reads_{args.rows}_{repeat}.duckdb"
        elapsed, _ = _timed(_load_duckdb, csv_path, db_path)
        times["duckdb-load"].append(elapsed)
        elapsed, results["duckdb-sql"] = _timed(run_duckdb_sql, db_path)
        times["duckdb-sql"].append(elapsed)
        elapsed, outcome = _timed(run_gx_duckdb, db_path, True)
        if isinstance(outcome, str):
            notes["gx-duckdb-connection-fix"] = outcome
        else:
            times.setdefault("gx-duckdb-connection-fix", []).append(elapsed)
            results["gx-duckdb-connection-fix"], evaluated["gx-duckdb-connection-fix"] = outcome
    # agreement on the typed checks (text-format checks exist only in the gx-pandas path)
    typed_labels = {
        expectation_label(e["type"], e["kwargs"])
        for e in load_suite("reads").expectations
        if e["meta"].get("applies_to", TYPED) == TYPED
    }
    reference = {pair for pair in results["gx-pandas"] if pair[1] in typed_labels}
    planted = args.rows // PLANT_EVERY
    agree = {
        name: found == {pair for pair in reference if name not in evaluated or pair[1] in evaluated[name]}
        for name, found in results.items()
        if name != "gx-pandas"
    }
    report = {
        "rows": args.rows,
        "repeats": args.repeats,
        "planted_rows": planted,
        "flagged_pairs_gx_pandas": len(results["gx-pandas"]),
        "median_seconds": {k: round(statistics.median(v), 2) for k, v in times.items() if v},
        "median_cpu_seconds": {k: round(statistics.median(v), 2) for k, v in CPU.items() if v},
        "agree_with_gx_pandas": agree,
        "could_not_run": notes,
        "expectations_evaluated": {k: len(v) for k, v in evaluated.items()},
        "typed_expectations_in_suite": len(typed_labels),
    }
    for name, found in results.items():
        if name != "gx-pandas" and not agree[name]:
            wanted = {p for p in reference if name not in evaluated or p[1] in evaluated[name]}
            report.setdefault("disagreements", {})[name] = {
                "missing": sorted(wanted - found)[:5],
                "extra": sorted(found - wanted)[:5],
            }
    print(json.dumps(report, indent=2))
    return 0 if all(agree.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
