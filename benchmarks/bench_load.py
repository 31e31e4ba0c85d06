"""Warehouse load and publish speed: a 10^6-read validated batch into DuckDB, beside a bare DuckDB copy.

Run from the checkout:  .venv/bin/python benchmarks/bench_load.py --patients 166667 --runs 5
(``--only publish`` or ``--only load`` for one half.)

Measured, each on a fresh warehouse file unless said otherwise, median of ``--runs`` runs:
- ``cohortpool load (new batch)``: ``load_batch`` end to end (migrate, checksum the files, one
  transaction with supersede, typed bulk inserts from Parquet, quarantine, summary, sql/checks, commit).
- ``cohortpool load (resubmission)``: the same patients again as a corrected batch, over a warehouse
  holding the first: every earlier row is superseded (history kept) and the new rows inserted.
- ``cohortpool load (already loaded)``: the same batch again (idempotent no-op).
- peer ``duckdb CREATE TABLE AS read_parquet``: the floor: DuckDB copying the three Parquet files into
  bare tables in one transaction (no types, constraints, lineage, history or checks).
- ``cohortpool publish``: ``publish`` of the warehouse holding that batch (writer lock, migrate check,
  CHECKPOINT, copy, read-back check, atomic rename, data dictionary page), beside its peer ``cp``: a
  plain copy of the same file (``shutil.copyfile``), the floor of any copy-based publication.
The ratio column is each wall time over its peer's. CPU time (user + system, every thread of the
process) is shown beside the wall time because the machine is shared: it moves less with the load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from cohortpool.warehouse import load_batch, publish  # noqa: E402
from warehouse_batches import make_tables, write_batch  # noqa: E402


def _bare_copy(db: Path, batch: Path) -> None:
    # the peer: DuckDB itself, straight from Parquet into tables, nothing else
    with duckdb.connect(str(db)) as con:
        con.begin()
        for table in ("clinical", "reads", "imaging_manifest"):
            con.execute(
                f"CREATE TABLE {table} AS SELECT * FROM read_parquet($p)",
                {"p": str(batch / "accepted" / f"{table}.parquet")},
            )
        con.commit()


def _median(
    runs: int, setup: Callable[[Path], None], action: Callable[[Path], object], work: Path
) -> tuple[float, float]:
    """Median wall time and median CPU time (all threads of this process) of ``action``."""
    times, cpu = [], []
    for i in range(runs):
        db = work / f"run{i}.duckdb"
        setup(db)
        start, start_cpu = time.perf_counter(), time.process_time()
        action(db)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        db.unlink(missing_ok=True)
        wal = db.with_name(db.name + ".wal")
        if wal.exists():
            wal.unlink()
    return statistics.median(times), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=166_667, help="6 reads and 6 series per patient")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=("load", "publish"), help="measure only the loads or the publish")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_load_"))
    try:
        before_load = f"{os.getloadavg()[0]:.1f}"
        started = time.perf_counter()
        tables = make_tables("site01", args.patients, seed=11)
        first = write_batch(work / "night1", "site01", "2026-11-01", tables)
        tables["clinical"]["bmi"] = tables["clinical"]["bmi"] + 0.01  # the site's correction
        second = write_batch(work / "night2", "site01", "2026-11-02", tables)
        n_reads, n_series = len(tables["reads"]), len(tables["imaging_manifest"])
        print(f"batch: {args.patients} patients, {n_reads} reads, {n_series} series "
              f"(generated in {time.perf_counter() - started:.1f} s)")  # fmt: skip

        def nothing(db: Path) -> None:
            return None

        def preload(db: Path) -> None:
            load_batch(db, first)

        results: dict[str, tuple[float, float, str]] = {}
        if args.only != "publish":
            peer = "peer: duckdb CREATE TABLE AS read_parquet"
            results[peer] = (*_median(args.runs, nothing, lambda db: _bare_copy(db, first), work), peer)
            for name, setup, action in (
                ("cohortpool load (new batch)", nothing, lambda db: load_batch(db, first)),
                (
                    "cohortpool load (resubmission, all rows superseded)",
                    preload,
                    lambda db: load_batch(db, second),
                ),
                ("cohortpool load (already loaded, no-op)", preload, lambda db: load_batch(db, first)),
            ):
                results[name] = (*_median(args.runs, setup, action, work), peer)
        if args.only != "load":
            loaded = work / "loaded.duckdb"
            load_batch(loaded, first)
            size = loaded.stat().st_size
            peer = f"peer: cp of the warehouse file ({size / 2**20:.0f} MiB)"
            copies = work / "copies"
            copies.mkdir()

            def copy(db: Path) -> None:
                shutil.copyfile(loaded, copies / "copy.duckdb")

            def publish_it(db: Path) -> None:
                publish(loaded, copies / "published" / "warehouse.duckdb")

            results[peer] = (*_median(args.runs, nothing, copy, work), peer)
            results["cohortpool publish (warehouse of that batch)"] = (
                *_median(args.runs, nothing, publish_it, work),
                peer,
            )
        print(f"\nload average before/after: {before_load} / {os.getloadavg()[0]:.1f} (2 cores)")
        print(
            f"\n| what | median wall s ({args.runs} runs) | median CPU s | reads/s (wall) | ratio to peer |"
        )
        print("|---|---|---|---|---|")
        for name, (seconds, cpu, peer_name) in results.items():
            ratio = seconds / results[peer_name][0]
            print(f"| {name} | {seconds:.2f} | {cpu:.2f} | {n_reads / seconds:,.0f} | {ratio:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
