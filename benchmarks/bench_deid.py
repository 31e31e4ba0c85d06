"""De-identification throughput: cohortpool vs cp -r, dicognito, pydicom/deid and plain pydicom.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_deid.py --patients 7 --runs 3 --workers 2

Builds (once) a full-size synthetic site drop with ``cohortpool synth --full-size`` under
``benchmarks/_work/deid/``, then times every tool on the same DICOM folder, each run into a fresh
output folder, in alternating rounds (every tool once per round, ``--runs`` rounds), and prints a
markdown table: median wall time of the runs, files/s, MB/s (input bytes), the ratio to ``cp -r``
and to the fastest peer, and peak resident memory (the largest single process, from
``/usr/bin/time -v``), with the load average seen during the rounds. cohortpool runs with its
defaults, the retention list (allow-list) included. A second cohortpool measurement on a quarter of
the corpus shows whether memory stays flat as the corpus grows. The machine's other load is not
controlled: run it when the machine is quiet and say when it was not.

Python start-up: every Python tool runs with a bytecode cache (``PYTHONPYCACHEPREFIX`` under the work
folder, ``PYTHONDONTWRITEBYTECODE`` removed) after one untimed warm-up run on a few files, as an
installed tool would; without it each start compiles every imported module from source, which costs
the tools that import more (cohortpool: typer, rich, pydantic, pydicom) close to a second per run.
``--no-pycache`` measures that condition instead.

``floor`` is not a tool: it is the least any tool meeting cohortpool's contract must do per file
(sha256 of the input for the ledger, sha256 of the output for submission.json, a kernel copy of the
bytes) with no header parsing at all, on the same number of processes: the ceiling of what cohortpool
could reach. As root, the kernel's caches are reset before every timed run (see :func:`settle`);
``--cold`` leaves them empty, so every tool and the corpus start from disk.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
COHORTPOOL = str(Path(PY).with_name("cohortpool"))
SECRET = "d5f1fe363df2cc7aa019c764b4da140950314ff4caf20eb9029b009d0f688af0"

DEID_SCRIPT = """
import sys
from deid.dicom import get_files, replace_identifiers
files = list(get_files(sys.argv[1]))
replace_identifiers(dicom_files=files, save=True, overwrite=True, output_folder=sys.argv[2])
"""
#: the least any tool meeting the contract does per file, without parsing a header: sha256 of the
#: input (the ledger), sha256 of the output (submission.json) and a kernel copy of the bytes, split
#: over the same number of processes as cohortpool's workers
FLOOR_SCRIPT = """
import hashlib, mmap, os, sys
from multiprocessing import get_context
def one(job):
    i, path = job
    with open(path, "rb") as h, mmap.mmap(h.fileno(), 0, access=mmap.ACCESS_READ) as m:
        src, out, view = hashlib.sha256(), hashlib.sha256(), memoryview(m)
        for o in range(0, len(m), 1 << 16):
            chunk = view[o : o + (1 << 16)]
            src.update(chunk)
            out.update(chunk)
            chunk.release()
        view.release()
        fd = os.open(os.path.join(sys.argv[2], f"{i:06d}.dcm"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        done = 0
        while done < len(m):
            done += os.copy_file_range(h.fileno(), fd, len(m) - done, done)
        os.close(fd)
    return src.hexdigest(), out.hexdigest()
files = sorted(os.path.join(r, n) for r, _, ns in os.walk(sys.argv[1]) for n in ns)
with get_context("fork").Pool(int(sys.argv[3])) as pool:
    pool.map(one, list(enumerate(files)), chunksize=16)
"""
PYDICOM_SCRIPT = """
import os, sys, pydicom
n = 0
for root, _, names in os.walk(sys.argv[1]):
    for name in sorted(names):
        ds = pydicom.dcmread(os.path.join(root, name))
        n += 1
        ds.save_as(os.path.join(sys.argv[2], f"{n:06d}.dcm"))
"""


def build_corpus(work: Path, patients: int) -> Path:
    drop = work / "corpus" / "site01" / "2025-03-01"
    if not drop.is_dir():
        subprocess.run(
            [COHORTPOOL, "synth", str(work / "corpus"), "--sites", "1", "--full-size",
             "--max-patients", str(patients), "--seed", "7"],
            check=True,
        )  # fmt: skip
    return drop


def subset(dicom: Path, target: Path, fraction: float) -> Path:
    """Hard-linked copy of the first ``fraction`` of the files (same bytes, no extra disk)."""
    if target.is_dir():
        return target
    files = sorted(p for p in dicom.rglob("*") if p.is_file())
    for path in files[: max(1, int(len(files) * fraction))]:
        link = target / "dicom" / path.relative_to(dicom)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, link)
    return target


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, int, float]:
    """(wall seconds, peak RSS MB, exit code, CPU seconds user+sys incl. children) under /usr/bin/time -v.

    CPU seconds are the contention-robust figure on a shared machine: wall time grows with other
    people's load, the work a tool does does not.
    """
    start = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, env=env, check=False
    )
    wall = time.perf_counter() - start
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", proc.stderr))
    return wall, (int(match[1]) / 1024 if match else float("nan")), proc.returncode, cpu


def settle(cold: bool, reset: bool, dicom: Path, warm_up: Callable[[], object]) -> None:
    """Put the machine in the same state before every timed run.

    Always: flush the previous run's deleted output (ext4 frees and discards its blocks in the
    background, which otherwise lands in the next tool's time). With ``reset`` (root only): empty the
    kernel's caches too. On these VMs repeated create-and-delete cycles of a 600 MB tree make every
    tool slower run after run (cohortpool's de-identification phase: 0.85 s on the first run, 1.05 s by
    the sixth; dropping the caches brings it back), so without a reset the tools measured later in a
    run are penalised. After the reset the corpus is read back (unless ``cold``) and the tool runs once
    on a tiny corpus, untimed, so its own code is in the page cache again.
    """
    os.sync()
    if reset or cold:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        if not cold:
            subprocess.run(["cat", *map(str, dicom.rglob("*.dcm"))], stdout=subprocess.DEVNULL, check=False)
            warm_up()


def corpus_size(dicom: Path) -> tuple[int, int]:
    files = [p for p in dicom.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=7, help="synthetic patients (~170 files each)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "_work" / "deid")
    parser.add_argument("--tools", default="cp,floor,cohortpool,cohortpool-1,pydicom,dicognito,deid")
    parser.add_argument("--no-pycache", action="store_true", help="no bytecode cache (compile every start)")
    parser.add_argument(
        "--cold", action="store_true", help="drop the page cache before every timed run (root only)"
    )
    parser.add_argument(
        "--no-reset", action="store_true", help="do not reset the kernel's caches between runs (see settle)"
    )
    args = parser.parse_args(argv)
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    drop = build_corpus(work, args.patients)
    dicom = drop / "dicom"
    quarter = subset(dicom, work / "quarter" / "2025-03-01", 0.25)
    tiny = subset(dicom, work / "tiny" / "2025-03-01", 0.01)
    n_files, n_bytes = corpus_size(dicom)
    # the site must be declared (cohortpool has no built-in sites)
    env = {**os.environ, "COHORTPOOL_SECRET": SECRET, "COHORTPOOL_SITES": '[{"site_id": "site01"}]'}
    if args.no_pycache:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    out, vault = work / "out", work / "vault"

    def cohortpool(workers: int, source: Path = drop) -> list[str]:
        return [COHORTPOOL, "deid", str(source), str(out), "--site", "site01", "--vault", str(vault),
                "--workers", str(workers), "--night", "2025-03-01"]  # fmt: skip

    def tool(name: str, source: Path = dicom) -> list[str]:
        src, dst = str(source), str(out)
        return {
            "cp": lambda: ["cp", "-r", src, dst],
            "floor": lambda: [PY, "-c", FLOOR_SCRIPT, src, dst, str(args.workers)],
            "cohortpool": lambda: cohortpool(args.workers, source.parent),
            "cohortpool-1": lambda: cohortpool(1, source.parent),
            "pydicom": lambda: [PY, "-c", PYDICOM_SCRIPT, src, dst],
            "dicognito": lambda: [PY, "-m", "dicognito", "--quiet", "--output-directory", dst, src],
            "deid": lambda: [PY, "-c", DEID_SCRIPT, src, dst],
        }[name]()

    can_reset = os.access("/proc/sys/vm/drop_caches", os.W_OK)
    if args.cold and not can_reset:
        parser.error("--cold needs write access to /proc/sys/vm/drop_caches (root)")
    reset = can_reset and not args.no_reset
    subprocess.run(["cat", *map(str, dicom.rglob("*.dcm"))], stdout=subprocess.DEVNULL, check=False)  # warm
    names = args.tools.split(",")

    def warm_up(name: str) -> None:  # untimed, on 1 % of the corpus: bytecode cache, page cache
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(vault, ignore_errors=True)
        out.mkdir(parents=True) if name in ("pydicom", "deid", "floor") else None
        timed(tool(name, tiny / "dicom"), env)

    for name in names:
        warm_up(name)
    # rounds alternate the tools (A B C, A B C, ...), so a change in the machine's load during the run
    # falls on every tool alike rather than on whichever ran last
    walls: dict[str, list[float]] = {name: [] for name in names}
    peaks: dict[str, list[float]] = {name: [] for name in names}
    cpus: dict[str, list[float]] = {name: [] for name in names}
    loads = [os.getloadavg()[0]]
    for _ in range(args.runs):
        for name in names:
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(vault, ignore_errors=True)
            settle(args.cold, reset, dicom, functools.partial(warm_up, name))
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(vault, ignore_errors=True)
            out.mkdir(parents=True) if name in ("pydicom", "deid", "floor") else None
            os.sync()
            wall, peak, code, cpu = timed(tool(name), env)
            if code not in (0, 1):
                print(f"{name}: exit {code}", file=sys.stderr)
            walls[name].append(wall)
            peaks[name].append(peak)
            cpus[name].append(cpu)
            loads.append(os.getloadavg()[0])
    rows = [(n, statistics.median(walls[n]), max(peaks[n]), statistics.median(cpus[n])) for n in names]
    for name in names:
        wall_s, cpu_s = [round(w, 2) for w in walls[name]], [round(c, 2) for c in cpus[name]]
        print(f"{name}: wall {wall_s} s, cpu {cpu_s} s, peak {max(peaks[name]):.0f} MB", file=sys.stderr)
    cores = os.cpu_count()
    print(
        f"load average (1 min) during the rounds: {min(loads):.1f}-{max(loads):.1f} on {cores} cores",
        file=sys.stderr,
    )
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(vault, ignore_errors=True)
    q_files, _ = corpus_size(quarter / "dicom")
    q_wall, q_peak, _, _ = timed(cohortpool(args.workers, quarter), env)
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(vault, ignore_errors=True)

    by = {name: wall for name, wall, _, _ in rows}
    by_cpu = {name: cpu for name, _, _, cpu in rows}
    peers = [p for p in ("dicognito", "deid") if p in by]  # the tools people use; pydicom, floor: baselines
    fastest_peer = min((by[p] for p in peers), default=float("nan"))
    fastest_peer_cpu = min((by_cpu[p] for p in peers), default=float("nan"))
    print(f"\ncorpus: {n_files} files, {n_bytes / 1e6:.0f} MB (cohortpool synth --full-size, "
          f"{args.patients} patients); {args.runs} runs each, median; workers={args.workers}; "
          f"{os.cpu_count()} cores; bytecode cache {'off' if args.no_pycache else 'on'}; "
          f"page cache {'dropped before every run' if args.cold else 'warm'}; "
          f"kernel caches {'reset before every run' if reset or args.cold else 'not reset'}\n")  # fmt: skip
    print("| tool | median wall s | files/s | MB/s | throughput / cp | / fastest peer | median CPU s "
          "| files per CPU-s | CPU: fastest peer / tool | peak RSS MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, wall, peak, cpu in rows:
        cp_ratio = by["cp"] / wall if "cp" in by else float("nan")
        print(f"| {name} | {wall:.2f} | {n_files / wall:.0f} | {n_bytes / 1e6 / wall:.0f} | "
              f"{cp_ratio:.2f}x | {fastest_peer / wall:.2f}x | {cpu:.2f} | {n_files / max(cpu, 1e-9):.0f} | "
              f"{fastest_peer_cpu / max(cpu, 1e-9):.2f}x | {peak:.0f} |")  # fmt: skip
    full_peak = max((p for n, _, p, _ in rows if n == "cohortpool"), default=float("nan"))
    print(f"\ncohortpool on a quarter of the corpus ({q_files} files): {q_wall:.2f} s, "
          f"peak RSS {q_peak:.0f} MB (full corpus: {full_peak:.0f} MB)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
