"""The nightly run at demo size and 10x: time per stage, and Prefect's own overhead as a share of the run.

Two runs per size, each on a fresh output folder over the same landing folder:

- ``prefect``: ``cohortpool run LANDING --out OUT`` as an operator runs it (a fresh ``OUT/.prefect`` home, so
  the temporary API server starts and builds its database inside the measured time);
- ``bare``: the same stage functions in the same layout without Prefect (sites on a thread pool of the
  same size, de-identification with the same worker processes, loads one at a time in site order, then
  the cross-site checks, the checksum and the report), in a child process so imports count alike.

Prefect's overhead = flow-run wall time (from its API) minus the bare run's wall time, over the flow-run
time; the temporary server's start-up is shown apart (a production deployment keeps its server running).
Per-stage times are the sum of task-run durations (prefect) or of stage-call durations (bare).

    .venv/bin/python benchmarks/bench_nightly.py --scales 1 10 --repeats 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECRET = "4f1c3e77b4a4f5dfbc5d27352b1a63ae4561f1ba040cab7c9c85ceb7d477e295"
STAGES = {
    "scan-landing": "scan",
    "build-submission": "de-identify + package",
    "validate-submission": "validate",
    "load-batch": "load",
    "mark-processed": "mark processed",
    "compare-sites": "cross-site checks",
    "warehouse-checksum": "checksum",
    "write-report": "report",
    "publish-night-summary": "artifacts",
}


def _env(n_sites: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "TMPDIR"}
    env["COHORTPOOL_SECRET"] = SECRET
    env["COHORTPOOL_SITES"] = json.dumps([{"site_id": f"site{i:02d}"} for i in range(1, n_sites + 1)])
    env["COHORTPOOL_CONFIG"] = "/nonexistent/cohortpool.yaml"
    return env


def _landing(work: Path, n_sites: int) -> Path:
    landing = work / f"landing-{n_sites}sites"
    if not (landing / "_truth.json").is_file():
        from cohortpool.synth import write_consortium

        started = time.perf_counter()
        write_consortium(landing, sites=n_sites)
        print(f"synthesized {n_sites} sites in {time.perf_counter() - started:.0f} s", flush=True)
    return landing


def bare(landing: Path, out: Path) -> dict[str, float]:
    """The nightly run's stage calls without Prefect; returns seconds per stage and the total."""
    started = time.perf_counter()
    from flows.nightly import SITES_AT_ONCE

    from cohortpool import tasks  # the same bodies the flow runs (the .fn of each task)
    from cohortpool.pipeline.layout import RunLayout
    from cohortpool.pipeline.runconfig import load_run_config

    config = load_run_config(require_key=True)
    layout = RunLayout(out)
    times: dict[str, float] = defaultdict(float)

    def timed(stage: str, fn, *args):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        result = fn(*args)
        times[stage] += time.perf_counter() - t0
        return result

    times["imports"] = time.perf_counter() - started
    nights = timed("scan", tasks.scan_new_nights.fn, landing, layout.state).pending
    sub_key, val_key = config.site_fingerprint(), config.hub_fingerprint()

    def site(n):  # type: ignore[no-untyped-def]
        sub_dir = layout.submission(n.site_id, n.night)
        sub = timed(
            "de-identify + package",
            tasks.build_submission.fn,
            n.path,
            sub_dir,
            layout.vault(n.site_id),
            n.site_id,
            n.night,
            n.content_sha256,
            sub_key,
            config,
            config.workers,
        )
        return timed(
            "validate",
            tasks.validate_batch.fn,
            sub_dir,
            layout.validated(n.site_id, n.night),
            n.site_id,
            n.night,
            sub.sha256,
            val_key,
        )

    with ThreadPoolExecutor(max_workers=SITES_AT_ONCE) as pool:
        validated = list(pool.map(site, nights))
    for n, v in sorted(zip(nights, validated, strict=True), key=lambda p: (p[0].site_id, p[0].night)):
        timed("load", tasks.load_into_warehouse.fn, layout.warehouse, v.path, n.site_id)
        timed("mark processed", tasks.mark_night_processed.fn, n, layout.state)
    timed(
        "cross-site checks",
        tasks.compare_site_distributions.fn,
        out / "validated",
        out / "validated" / "distribution_warnings.csv",
    )
    sha = timed("checksum", tasks.warehouse_checksum.fn, layout.warehouse)
    plan = config.plan
    timed(
        "report",
        tasks.write_consortium_report.fn,
        layout.warehouse,
        layout.report,
        plan,
        sha,
        tasks.plan_sha256(plan),
        config.small_cell_threshold,
    )
    times["total"] = time.perf_counter() - started
    return dict(times)


def _seconds(a: str, b: str) -> float:
    return (dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a)).total_seconds()


def orchestration_gaps(db: sqlite3.Connection) -> float:
    """Seconds of the flow run during which no task was running: Prefect's own time between tasks.

    Measured inside one run, so unlike a bare-versus-Prefect difference it does not swing with the load
    other processes put on a shared machine.
    """
    flow_start, flow_end = db.execute(
        "select start_time, end_time from flow_run where name = 'nightly'"
    ).fetchone()
    spans = sorted(
        (_seconds(flow_start, a), _seconds(flow_start, b))
        for a, b in db.execute("select start_time, end_time from task_run where end_time is not null")
    )
    busy, reach = 0.0, 0.0
    for a, b in spans:
        a = max(a, reach)
        if b > a:
            busy, reach = busy + b - a, b
    return _seconds(flow_start, flow_end) - busy


def prefect(landing: Path, out: Path, env: dict[str, str]) -> dict[str, float]:
    """`cohortpool run` in a child process; stage times from the task runs in its Prefect database."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(Path(sys.executable).with_name("cohortpool")), "run", str(landing), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise SystemExit(f"cohortpool run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    db = sqlite3.connect(out / ".prefect" / "prefect.db")
    flow_start, flow_end = db.execute(
        "select start_time, end_time from flow_run where name = 'nightly'"
    ).fetchone()
    times: dict[str, float] = defaultdict(float)
    for name, start, end in db.execute(
        "select name, start_time, end_time from task_run where end_time is not null"
    ):
        stage = next((label for prefix, label in STAGES.items() if name.startswith(prefix)), name)
        times[stage] += _seconds(start, end)
    times["flow run"] = _seconds(flow_start, flow_end)
    times["orchestration gaps"] = orchestration_gaps(db)
    times["total"] = wall
    times["start-up (imports, temporary server)"] = wall - times["flow run"]
    return dict(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10], help="x demo size (3 sites each)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_work" / "nightly")
    parser.add_argument("--bare", nargs=2, type=Path, metavar=("LANDING", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        print(json.dumps(bare(*args.bare)))
        return
    for scale in args.scales:
        n_sites = 3 * scale
        landing = _landing(args.work, n_sites)
        env = _env(n_sites)
        runs: dict[str, list[dict[str, float]]] = {"prefect": [], "bare": []}
        for repeat in range(args.repeats):
            for kind in ("bare", "prefect"):
                out = args.work / f"out-{n_sites}-{kind}-{repeat}"
                shutil.rmtree(out, ignore_errors=True)
                if kind == "prefect":
                    runs[kind].append(prefect(landing, out, env))
                else:
                    child = subprocess.run(
                        [sys.executable, __file__, "--bare", str(landing), str(out)],
                        env={**env, "TMPDIR": str(args.work)},
                        capture_output=True,
                        text=True,
                        check=True,
                        cwd=ROOT,
                    )
                    runs[kind].append(json.loads(child.stdout.strip().splitlines()[-1]))
                took = runs[kind][-1]["total"]
                print(f"{n_sites} sites, {kind}, run {repeat + 1}: {took:.1f} s", flush=True)
        med = {kind: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for kind, rs in runs.items()}
        pre, bar = med["prefect"], med["bare"]
        overhead = pre["flow run"] - bar["total"]
        n_files = sum(1 for _ in landing.rglob("*.dcm"))
        print(f"\n### {scale}x demo size ({n_sites} sites, {n_files} DICOM files)")
        print("| stage | bare s | in Prefect s |\n|---|---|---|")
        for stage in [*dict.fromkeys([*STAGES.values(), "imports"])]:
            print(f"| {stage} | {bar.get(stage, 0):.1f} | {pre.get(stage, 0):.1f} |")
        print(f"| whole run, bare (incl. imports) | {bar['total']:.1f} | |")
        print(f"| flow run (Prefect API start to end) | | {pre['flow run']:.1f} |")
        print(f"| of which no task running (orchestration gaps) | | {pre['orchestration gaps']:.1f} |")
        start_up = pre["start-up (imports, temporary server)"]
        print(f"| start-up: imports + temporary server | | {start_up:.1f} |")
        print(f"| whole `cohortpool run` | | {pre['total']:.1f} |")
        share = 100 * overhead / pre["flow run"]
        with_start = 100 * (pre["total"] - bar["total"]) / pre["total"]
        print(f"\nPrefect overhead in the flow run: {overhead:.1f} s = {share:.1f} %", end="; ")
        print(f"with start-up {with_start:.1f} %")
        print(json.dumps(med), flush=True)


if __name__ == "__main__":
    main()
