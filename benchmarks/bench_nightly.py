"""A consortium night at 10, 20, 50 sites: `cohortpool run` against `cohortpool deid` of the same sites.

For each site count N (issue 18, item 5):

1. ``cohortpool synth --sites N`` writes the night once (kept under ``--work`` for the next runs);
2. ``deid``: ``cohortpool deid`` of every site's drop, one site after the other, each with every core (its
   default): the irreducible bulk work of the night, the denominator of the ratio;
3. ``run``: ``cohortpool run LANDING --out OUT`` on a fresh output folder, as an operator runs it (a fresh
   ``OUT/.prefect``, so the temporary API server starts inside the measured time).

Measured per run: wall time; CPU of the whole process tree (user + system of every process, sampled every
0.2 s with psutil, so worker processes that come and go are counted; the kernel's figure for reaped
children is printed beside it as a check); from the run's own Prefect database, each stage's span (first
task start to last task end) and summed task time, the hub half (from the last site's de-identification
to the end of the flow run) and the CPU use in it, and Prefect's share: the time in the flow run during
which no task was running (Prefect between tasks) plus everything outside the flow run (imports, the
temporary server's start and stop), over the whole wall time. Medians of ``--repeats`` runs (deid and run
alternate, so a change in the machine's load hits both).

    .venv/bin/python benchmarks/bench_nightly.py --sites 10 20 50 --repeats 3

Plain Python over the installed CLI; the machine's load average is printed with every run (a shared
machine moves whole runs by minutes: the ratios move less than the seconds).
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
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).with_name("cohortpool"))
SECRET = "4f1c3e77b4a4f5dfbc5d27352b1a63ae4561f1ba040cab7c9c85ceb7d477e295"
NIGHT = "2025-03-01"
STAGES = {
    "scan-landing": "scan",
    "build-submission": "de-identify + package",
    "validate-submission": "validate",
    "load-batch": "load",
    "mark-processed": "mark processed",
    "publish-warehouse": "publish",
    "compare-sites": "cross-site checks",
    "warehouse-checksum": "checksum",
    "write-report": "report",
    "publish-night-summary": "artifacts",
}
GOALS = "10 sites: run <= 1.5x deid; 50 sites: run < 300 s; hub half CPU > 170 %; Prefect < 10 %"


def _env(n_sites: int, work: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "COHORTPOOL_")) and k != "TMPDIR"
    }
    env.update(
        COHORTPOOL_SECRET=SECRET,
        COHORTPOOL_SITES=json.dumps([{"site_id": f"site{i:02d}"} for i in range(1, n_sites + 1)]),
        COHORTPOOL_CONFIG="/nonexistent/cohortpool.yaml",
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        GX_ANALYTICS_ENABLED="false",
    )
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    del work
    return env


def _landing(work: Path, n_sites: int, max_patients: int | None, env: dict[str, str]) -> Path:
    name = f"landing-{n_sites}sites" + (f"-{max_patients}p" if max_patients else "")
    landing = work / name
    if not (landing / "_truth.json").is_file():
        shutil.rmtree(landing, ignore_errors=True)
        command = [CLI, "synth", str(landing), "--sites", str(n_sites)]
        if max_patients:
            command += ["--max-patients", str(max_patients)]
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, text=True)
        print(f"  {' '.join(command[1:])}: {time.perf_counter() - started:.0f} s", flush=True)
    return landing


class TreeCpu:
    """CPU seconds of a process and all its descendants, sampled in a thread while it runs."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        self.root = psutil.Process(root)
        self.interval = interval
        self.last: dict[tuple[int, float], float] = {}  # (pid, create_time) -> cpu seconds last seen
        self.samples: list[tuple[float, float]] = []  # (unix time, cumulative cpu seconds)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        for proc in procs:
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    self.last[(proc.pid, proc.create_time())] = times.user + times.system
            except psutil.Error:
                continue
        self.samples.append((time.time(), sum(self.last.values())))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def between(self, start: float, end: float) -> float:
        """CPU seconds used between two unix times (from the nearest samples)."""

        def at(t: float) -> float:
            before = [cpu for when, cpu in self.samples if when <= t]
            return before[-1] if before else 0.0

        return at(end) - at(start)


def _timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, float, TreeCpu, str]:
    """Run ``command``; wall s, sampled tree CPU s, kernel CPU s of reaped children, sampler, stderr."""
    before = os.times()
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    tree = TreeCpu(proc.pid)
    _, err = proc.communicate()
    wall = time.perf_counter() - started
    tree.stop()
    after = os.times()
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}):\n{err[-3000:]}")
    kernel = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return wall, tree.samples[-1][1] if tree.samples else 0.0, kernel, tree, err


def deid_alone(landing: Path, out: Path, env: dict[str, str]) -> dict[str, float]:
    """`cohortpool deid` of every site's drop, one site at a time (each with every core)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    totals: dict[str, float] = defaultdict(float)
    for site in sorted(p.name for p in landing.iterdir() if (p / NIGHT).is_dir()):
        wall, cpu, kernel, _, _ = _timed(
            [
                CLI,
                "deid",
                str(landing / site / NIGHT),
                str(out / "submissions" / site),
                "--site",
                site,
                "--vault",
                str(out / "vault" / site),
            ],
            env,
            out,
        )
        totals["wall"] += wall
        totals["cpu"] += cpu
        totals["cpu (kernel, reaped)"] += kernel
    return dict(totals)


def _seconds(a: str, b: str) -> float:
    return (dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a)).total_seconds()


def _unix(stamp: str) -> float:
    when = dt.datetime.fromisoformat(stamp)
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


def _busy(spans: list[tuple[float, float]]) -> float:
    busy, reach = 0.0, float("-inf")
    for a, b in sorted(spans):
        a = max(a, reach)
        if b > a:
            busy, reach = busy + b - a, b
    return busy


def run(landing: Path, out: Path, env: dict[str, str]) -> dict[str, float]:
    """`cohortpool run` on a fresh output folder; times and CPU from its process tree and Prefect database."""
    shutil.rmtree(out, ignore_errors=True)
    wall, cpu, kernel, tree, _ = _timed([CLI, "run", str(landing), "--out", str(out)], env, ROOT)
    db = sqlite3.connect(out / ".prefect" / "prefect.db")
    flow_start, flow_end = db.execute(
        "select start_time, end_time from flow_run where name = 'nightly'"
    ).fetchone()
    f0, f1 = _unix(flow_start), _unix(flow_end)
    tasks = [
        (name, _unix(a), _unix(b))
        for name, a, b in db.execute(
            "select name, start_time, end_time from task_run where end_time is not null"
        )
    ]
    times: dict[str, float] = {"wall": wall, "cpu": cpu, "cpu (kernel, reaped)": kernel, "flow run": f1 - f0}
    by_stage: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for name, a, b in tasks:
        stage = next((label for prefix, label in STAGES.items() if name.startswith(prefix)), name)
        by_stage[stage].append((a, b))
    for stage, spans in by_stage.items():
        times[f"{stage}: span"] = max(b for _, b in spans) - min(a for a, _ in spans)
        times[f"{stage}: task time"] = sum(b - a for a, b in spans)
    deid_end = max((b for a, b in by_stage.get("de-identify + package", [])), default=f0)
    times["site half (flow start to last de-identification)"] = deid_end - f0
    times["hub half (last de-identification to flow end)"] = f1 - deid_end
    times["hub half CPU %"] = 100 * tree.between(deid_end, f1) / max(f1 - deid_end, 1e-9)
    times["site half CPU %"] = 100 * tree.between(f0, deid_end) / max(deid_end - f0, 1e-9)
    times["no task running in the flow run"] = (f1 - f0) - _busy([(a, b) for _, a, b in tasks])
    times["outside the flow run (imports, temporary server)"] = wall - (f1 - f0)
    return times


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = dict.fromkeys(k for r in runs for k in r)
    return {k: statistics.median(r.get(k, 0.0) for r in runs) for k in keys}


def report(n_sites: int, landing: Path, repeats: int, deid: dict[str, float], night: dict[str, float]) -> str:
    files = sum(1 for _ in landing.rglob("*.dcm"))
    size = sum(p.stat().st_size for p in landing.rglob("*") if p.is_file()) / 1e6
    prefect_in = night["no task running in the flow run"]
    prefect_all = prefect_in + night["outside the flow run (imports, temporary server)"]
    lines = [
        f"### {n_sites} sites ({files:,} DICOM files, {size:,.0f} MB; median of {repeats})",
        "| measure | value |",
        "|---|---|",
        f"| `cohortpool deid`, every site one after the other: wall s | {deid['wall']:.1f} |",
        f"| `cohortpool deid`: CPU % (of 200) | {100 * deid['cpu'] / deid['wall']:.0f} |",
        f"| `cohortpool run`: wall s | {night['wall']:.1f} |",
        f"| **ratio run / deid** | **{night['wall'] / deid['wall']:.2f}** |",
        f"| `cohortpool run`: CPU % of the whole run (of 200) | {100 * night['cpu'] / night['wall']:.0f} |",
        f"| flow run s | {night['flow run']:.1f} |",
        f"| site half s (flow start to last de-identification) | "
        f"{night['site half (flow start to last de-identification)']:.1f} |",
        f"| site half CPU % | {night['site half CPU %']:.0f} |",
        f"| hub half s (last de-identification to flow end) | "
        f"{night['hub half (last de-identification to flow end)']:.1f} |",
        f"| **hub half CPU %** | **{night['hub half CPU %']:.0f}** |",
        f"| Prefect in the flow run (no task running) s | {prefect_in:.1f} |",
        f"| outside the flow run (imports, temporary server start/stop) s | "
        f"{night['outside the flow run (imports, temporary server)']:.1f} |",
        f"| **Prefect share**: in-flow / with start-up (% of wall) | "
        f"**{100 * prefect_in / night['wall']:.1f}** / "
        f"{100 * prefect_all / night['wall']:.1f} |",
        "",
        "| stage | span s | share of wall % | task time s (summed over site-nights) |",
        "|---|---|---|---|",
    ]
    for stage in dict.fromkeys(STAGES.values()):
        if f"{stage}: span" in night:
            span, summed = night[f"{stage}: span"], night[f"{stage}: task time"]
            lines.append(f"| {stage} | {span:.1f} | {100 * span / night['wall']:.0f} | {summed:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sites", type=int, nargs="+", default=[10], help="site counts (default: 10)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each (median); default 1")
    parser.add_argument(
        "--max-patients", type=int, default=None, help="synth --max-patients (smaller nights)"
    )
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_work" / "nightly")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"goals: {GOALS}", flush=True)
    for n_sites in args.sites:
        env = _env(n_sites, args.work)
        landing = _landing(args.work, n_sites, args.max_patients, env)
        deids, nights = [], []
        for repeat in range(args.repeats):
            load = os.getloadavg()[0]
            deids.append(deid_alone(landing, args.work / f"deid-{n_sites}", env))
            nights.append(run(landing, args.work / f"run-{n_sites}", env))
            print(
                f"  {n_sites} sites, round {repeat + 1}: deid {deids[-1]['wall']:.1f} s, "
                f"run {nights[-1]['wall']:.1f} s"
                f" (load average {load:.1f} -> {os.getloadavg()[0]:.1f})",
                flush=True,
            )
        deid, night = _median(deids), _median(nights)
        print("\n" + report(n_sites, landing, args.repeats, deid, night) + "\n", flush=True)
        print(json.dumps({"sites": n_sites, "deid": deids, "run": nights}), flush=True)


if __name__ == "__main__":
    main()
