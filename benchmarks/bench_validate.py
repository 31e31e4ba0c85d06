"""Validation speed: 10^6 reads three ways side by side, and the fixed cost of a small site-night.

Part 1, a large table (``--rows``, default 10^6 reads rows with planted defects). Every timed run starts
from the CSV file:

- ``gx-pandas``: cohortpool's reference path: ``read_table`` (CSV -> text and typed frames), the reads
  suite (text and typed halves) run by Great Expectations on pandas, the quarantine split;
- ``duckdb``: cohortpool's default: the same, with the suite's expectations run as DuckDB SQL generated
  from the suite JSON (``cohortpool.validate.sqlgen``); phases reported separately;
- ``plain-sql``: DuckDB reads the CSV into a typed table (``TRY_CAST``) and one hand-written query per typed
  expectation flags rows (this script only: the floor of what SQL alone costs; no text-format checks, no
  quarantine lines).

``gx-pandas`` and ``duckdb`` must report the same (source row, expectation) pairs, ``plain-sql`` the same on
the typed expectations it covers, or the run fails.

Part 2, the fixed cost (``--small-repeats``): a small site-night (the test fixture cloned to 800 rows in
three tables) validated again and again by one ``Validator`` per engine in this process (the per-table
overhead is the per-site time over three tables), and ``cohortpool validate`` as a whole process
(imports included).

Usage: ``.venv/bin/python benchmarks/bench_validate.py [--rows 1000000] [--repeats 3] [--small-repeats 5]``
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cohortpool  # noqa: F401  (telemetry off before GX loads)
from cohortpool.validate import Validator
from cohortpool.validate.frames import read_table
from cohortpool.validate.quarantine import split_table
from cohortpool.validate.run import SuiteRunner, expectation_label
from cohortpool.validate.suites import TYPED, load_suite

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "_work" / "validate"
CLEAN = ROOT / "tests" / "data" / "validate" / "clean"
#: planted every PLANT_EVERY rows, cycling through these (column, value) defects
PLANTS = (("level", "L7"), ("genant_grade", "4"), ("marrow_oedema", "maybe"), ("height_loss_pct", "140"))
PLANT_EVERY = 9973
SITE = "site02"
Pairs = set[tuple[int, str]]


def make_reads(rows: int) -> Path:
    """A reads.csv of ``rows`` rows: the clean fixture's reads, fresh pseudonyms, planted defects."""
    path = WORK / f"reads_{rows}.csv"
    if path.exists():
        return path
    WORK.mkdir(parents=True, exist_ok=True)
    with CLEAN.joinpath("reads.csv").open(encoding="utf-8", newline="") as handle:
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


def _pairs(frames: Any, suite: Any, findings: Any) -> Pairs:
    split = split_table(frames, suite, findings)
    lines = [*split.quarantine.itertuples(), *split.warnings.itertuples()]
    return {(int(r.source_row), str(r.expectation)) for r in lines}


def run_suite_path(folder: Path, runner: SuiteRunner, phases: dict[str, list[float]]) -> Pairs:
    """read_table + the suite + the quarantine split, timing each phase."""
    suite = load_suite("reads")
    start = time.perf_counter()
    frames = read_table(folder, suite)
    read = time.perf_counter()
    table_run = runner.run(suite, frames, SITE)
    checked = time.perf_counter()
    if table_run.errored:
        raise RuntimeError(f"{runner.engine}: {[o.errored for o in table_run.errored]}")
    if table_run.by_gx:
        raise RuntimeError(f"{runner.engine}: expectations left to GX: {table_run.by_gx}")
    pairs = _pairs(frames, suite, table_run.findings)
    done = time.perf_counter()
    for name, seconds in (("read", read - start), ("checks", checked - read), ("split", done - checked)):
        phases.setdefault(name, []).append(seconds)
    return pairs


def _sql_condition(exp: dict[str, Any]) -> str | None:
    """A SQL predicate true on the rows an expectation flags (hand-written; the typed reads checks)."""
    kind, kw = exp["type"], exp["kwargs"]
    col = f'"{kw["column"]}"' if "column" in kw else None

    def lit(v: Any) -> str:
        return str(v) if isinstance(v, int | float) else "'" + str(v).replace("'", "''") + "'"

    if kind == "expect_column_values_to_not_be_null":
        cond = f"{col} IS NULL"
    elif kind == "expect_column_values_to_be_in_set":
        values = kw["value_set"]
        if isinstance(values, dict):  # the suite parameter site_ids
            values = [SITE]
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


def run_plain_sql(csv_path: Path, phases: dict[str, list[float]]) -> tuple[Pairs, set[str]]:
    """DuckDB: CSV -> typed table, then one hand-written query per typed expectation."""
    import duckdb

    suite = load_suite("reads")
    casts = ", ".join(f'TRY_CAST("{c}" AS {t}) AS "{c}"' for c, t in suite.sql_types().items())
    found: Pairs = set()
    labels: set[str] = set()
    start = time.perf_counter()
    with duckdb.connect() as con:
        con.execute(
            f"CREATE TABLE reads AS SELECT {casts} FROM read_csv(?, all_varchar = true, header = true)",
            [str(csv_path)],
        )
        loaded = time.perf_counter()
        for exp in suite.expectations:
            if exp["meta"].get("applies_to", TYPED) != TYPED:
                continue  # the text checks need the raw strings
            cond = _sql_condition(exp)
            if cond is None:
                continue
            label = expectation_label(exp["type"], exp["kwargs"])
            labels.add(label)
            query = f"SELECT source_row FROM (SELECT source_row, ({cond}) AS bad FROM reads) WHERE bad"
            found |= {(int(r[0]), label) for r in con.execute(query).fetchall()}
    done = time.perf_counter()
    phases.setdefault("read", []).append(loaded - start)
    phases.setdefault("checks", []).append(done - loaded)
    return found, labels


def _timed(fn: Callable[..., Any], *args: Any) -> tuple[float, float, Any]:
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return time.perf_counter() - start, time.process_time() - cpu, out


def large(rows: int, repeats: int) -> dict[str, Any]:
    csv_path = make_reads(rows)
    folder = WORK / f"table_{rows}"
    folder.mkdir(exist_ok=True)
    (folder / "reads.csv").unlink(missing_ok=True)
    (folder / "reads.csv").symlink_to(csv_path)
    runners = {"gx-pandas": SuiteRunner("gx"), "duckdb": SuiteRunner("duckdb")}
    # untimed: imports, GX's context and suites, DuckDB's connection (the fixed costs of part 2)
    tiny = WORK / "tiny"
    tiny.mkdir(exist_ok=True)
    shutil.copy(CLEAN / "reads.csv", tiny / "reads.csv")
    for runner in runners.values():
        run_suite_path(tiny, runner, {})
    wall: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    phases: dict[str, dict[str, list[float]]] = {name: {} for name in (*runners, "plain-sql")}
    found: dict[str, Pairs] = {}
    sql_labels: set[str] = set()
    for _ in range(repeats):
        for name, runner in runners.items():
            seconds, cpu_seconds, found[name] = _timed(run_suite_path, folder, runner, phases[name])
            wall.setdefault(name, []).append(seconds)
            cpu.setdefault(name, []).append(cpu_seconds)
        seconds, cpu_seconds, (found["plain-sql"], sql_labels) = _timed(
            run_plain_sql, csv_path, phases["plain-sql"]
        )
        wall.setdefault("plain-sql", []).append(seconds)
        cpu.setdefault("plain-sql", []).append(cpu_seconds)
    reference = found["gx-pandas"]
    agree = {
        "duckdb": found["duckdb"] == reference,
        "plain-sql": found["plain-sql"] == {p for p in reference if p[1] in sql_labels},
    }
    base = statistics.median(wall["gx-pandas"])
    return {
        "rows": rows,
        "repeats": repeats,
        "planted_rows": rows // PLANT_EVERY,
        "flagged_pairs": len(reference),
        "median_wall_s": {k: round(statistics.median(v), 2) for k, v in wall.items()},
        "median_cpu_s": {k: round(statistics.median(v), 2) for k, v in cpu.items()},
        "ratio_to_gx_pandas": {k: round(statistics.median(v) / base, 3) for k, v in wall.items()},
        "median_phase_s": {
            path: {k: round(statistics.median(v), 2) for k, v in by_phase.items()}
            for path, by_phase in phases.items()
        },
        "agree_with_gx_pandas": agree,
        "plain_sql_expectations": len(sql_labels),
    }


def make_site_night(copies: int = 16) -> Path:
    """The clean fixture cloned ``copies`` times with fresh pseudonyms and UIDs: 50 rows a copy."""
    folder = WORK / f"site_night_{copies}"
    if folder.exists():
        return folder
    folder.mkdir(parents=True)
    for table in ("clinical", "reads", "imaging_manifest"):
        with CLEAN.joinpath(f"{table}.csv").open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            base = list(reader)
        rows = []
        for k in range(copies):
            for row in base:
                new = dict(row)
                new["patient_id"] = row["patient_id"][:-2] + f"{k:02X}"
                if "accession_id" in new:
                    new["accession_id"] = row["accession_id"][:-2] + f"{k:02X}"
                for uid in ("study_uid", "series_uid"):
                    if uid in new:
                        new[uid] = f"{row[uid]}{k}"
                rows.append(new)
        for number, row in enumerate(rows, 1):
            row["source_row"] = str(number)
        with folder.joinpath(f"{table}.csv").open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
    shutil.copy(CLEAN / "submission.json", folder / "submission.json")
    return folder


def small(repeats: int) -> dict[str, Any]:
    site_night = make_site_night()
    rows = sum(len(p.read_text().splitlines()) - 1 for p in site_night.glob("*.csv"))
    in_process: dict[str, list[float]] = {}
    in_process_cpu: dict[str, list[float]] = {}
    for engine in ("duckdb", "gx"):
        validator = Validator(engine=engine)
        validator.validate_submission(site_night, WORK / "small_out" / engine)  # untimed: fixed costs
        for n in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            validator.validate_submission(site_night, WORK / "small_out" / f"{engine}{n}")
            in_process.setdefault(engine, []).append(time.perf_counter() - start)
            in_process_cpu.setdefault(engine, []).append(time.process_time() - cpu)
    process: dict[str, list[float]] = {}
    for n in range(repeats):
        for engine in ("duckdb", "gx"):
            out = WORK / "small_out" / f"cli_{engine}{n}"
            command = [sys.executable, "-m", "cohortpool", "validate", str(site_night), "--out", str(out)]
            start = time.perf_counter()
            done = subprocess.run(
                [*command, "--engine", engine], capture_output=True, env=os.environ, check=False
            )
            process.setdefault(engine, []).append(time.perf_counter() - start)
            if done.returncode != 0:
                raise RuntimeError(f"cohortpool validate exited {done.returncode}: {done.stderr[-500:]!r}")
    return {
        "rows": rows,
        "tables": 3,
        "repeats": repeats,
        "in_process_median_s_per_site": {k: round(statistics.median(v), 3) for k, v in in_process.items()},
        "in_process_median_s_per_table": {
            k: round(statistics.median(v) / 3, 3) for k, v in in_process.items()
        },
        "cli_process_median_s": {k: round(statistics.median(v), 2) for k, v in process.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--small-repeats", type=int, default=5)
    parser.add_argument("--skip-large", action="store_true", help="part 2 only")
    args = parser.parse_args()
    report: dict[str, Any] = {"load_average_before": os.getloadavg()}
    report["small_site_night"] = small(args.small_repeats)
    if not args.skip_large:
        report["large_table"] = large(args.rows, args.repeats)
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))
    agree = report.get("large_table", {}).get("agree_with_gx_pandas", {})
    return 0 if all(agree.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
