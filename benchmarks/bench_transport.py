"""Transport speed: `cohortpool push` over SFTP beside OpenSSH's scp, and `receive`'s verification.

One OpenSSH sshd (Debian's openssh-server) is started on loopback exactly as the integration tests start
it (key-only, internal-sftp, chrooted when run as root); scp and push write to the same login, side by
side, the order alternating run by run. scp (OpenSSH 9: SFTP protocol under the hood) only copies;
push also hashes every file while sending it, writes it under a temporary name and renames it, writes the
journal and renames the whole submission into place. Each tool starts from an empty destination.

Workloads (random bytes, packaged by cohortpool's own ``package_submission``):
- ``large``: a few big files (``--large-mb`` in total, 8 files);
- ``series``: CT-slice-sized files (``--files`` x ``--file-kb``).

Verification: ``check_folder`` (one read and one sha256 of every file) over ``--verify-mb`` of files
already in the page cache, on one thread and on the default threads, beside coreutils ``sha256sum``.

    .venv/bin/python benchmarks/bench_transport.py [--runs 5] [--large-mb 256] [--files 400]
        [--file-kb 512] [--verify-mb 1024]

Prints medians as Markdown tables for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from sshd_server import SshServer, missing_tools, ssh_server

from cohortpool.features.package import package_submission
from cohortpool.transport import Pusher, check_folder, opener, read_listing
from cohortpool.transport.verify import WORKERS

COHORTPOOL = str(Path(sys.executable).with_name("cohortpool"))
PROFILE = {"edition": "bench", "options": [], "allow_burned_in": False}


def _write_submission(folder: Path, sizes: list[int], seed: str) -> int:
    """Random files of ``sizes`` bytes under ``folder/dicom/...``, packaged; returns the bytes listed."""
    for index, size in enumerate(sizes):
        path = folder / "dicom" / f"P{index % 4}" / f"series{index % 7}" / f"{seed}-{index:05d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        block = hashlib.shake_256(f"{seed}{index}".encode()).digest(min(size, 1 << 20))
        with path.open("wb") as out:
            left = size
            while left > 0:
                out.write(block[:left])
                left -= len(block)
    package_submission(folder, "site01", "2025-03-01", PROFILE, {}, "bench")
    return sum(sizes)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: the CLI runs as an installed wheel would: with its bytecode cached (pip compiles it at install time).
#: This machine sets PYTHONDONTWRITEBYTECODE=1, which makes every process compile each module it imports
#: from source again: about 1.5 s of CPU for `cohortpool push` alone.
CLI_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _timed_process(command: list[str]) -> tuple[float, float]:
    cpu, start = _children_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=CLI_ENV)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{command[0]} failed ({done.returncode}): {done.stdout}{done.stderr}")
    return wall, _children_cpu() - cpu


def _timed_call(call: Callable[[], object]) -> tuple[float, float]:
    cpu, start = time.process_time(), time.perf_counter()
    call()
    return time.perf_counter() - start, time.process_time() - cpu


def _clear(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


def bench_push(server: SshServer, source: Path, runs: int) -> dict[str, list[tuple[float, float]]]:
    """Wall and CPU seconds per run of scp, `cohortpool push` (a process) and the library's Pusher."""
    target = {"scp": "scp", "push (CLI)": "push-cli", "push (library)": "push-lib"}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in target}

    def scp() -> tuple[float, float]:
        return _timed_process(server.scp_command([source], f"{server.remote_inbox}/scp/"))

    def push_cli() -> tuple[float, float]:
        url = server.url(f"{server.remote_inbox}/push-cli")
        command = [COHORTPOOL, "push", "--known-hosts", str(server.known_hosts), "-i", str(server.client_key)]
        return _timed_process([*command, str(source), url])

    def push_library() -> tuple[float, float]:
        pusher = Pusher(
            opener(server.url(f"{server.remote_inbox}/push-lib"), [server.known_hosts], server.client_key), 60
        )

        def run() -> None:
            try:
                assert pusher.push(source).status == "delivered"
            finally:
                pusher.close()

        return _timed_call(run)

    tools = {"scp": scp, "push (CLI)": push_cli, "push (library)": push_library}
    for run in range(runs):
        order = list(tools) if run % 2 == 0 else list(reversed(tools))
        for name in order:
            _clear(server.inbox / target[name])
            os.sync()  # the previous tool's writes are not flushed on this one's time
            results[name].append(tools[name]())
    return results


def bench_verify(folder: Path, runs: int) -> dict[str, list[tuple[float, float]]]:
    listing = read_listing(folder)
    files = [str(folder / f.path) for f in listing.files.values()]
    results: dict[str, list[tuple[float, float]]] = {}
    check_folder(folder, listing)  # warm the page cache
    peers: dict[str, Callable[[], tuple[float, float]]] = {
        "check_folder, 1 thread": lambda: _timed_call(
            lambda: _no_problems(check_folder(folder, listing, workers=1))
        ),
        f"check_folder, {WORKERS} threads": lambda: _timed_call(
            lambda: _no_problems(check_folder(folder, listing))
        ),
        "coreutils sha256sum (1 process)": lambda: _timed_process(["sha256sum", *files]),
    }
    for _run in range(runs):
        for name, measure in peers.items():
            results.setdefault(name, []).append(measure())
    return results


def _no_problems(problems: list[object]) -> None:
    assert problems == [], problems


def _table(title: str, results: dict[str, list[tuple[float, float]]], megabytes: float, peer: str) -> str:
    base = statistics.median(w for w, _ in results[peer])
    lines = [
        f"{title} ({megabytes:.0f} MB, medians of {len(results[peer])} runs)",
        "",
        "| tool | median wall s | median CPU s (client) | MB/s (wall) | MB per client CPU s | throughput vs "
        + peer
        + " |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        per_cpu = f"{megabytes / cpu:.0f}" if cpu > 0 else "-"
        lines.append(
            f"| {name} | {wall:.2f} | {cpu:.2f} | {megabytes / wall:.0f} | {per_cpu} | {base / wall:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--large-mb", type=int, default=256)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--file-kb", type=int, default=512)
    parser.add_argument("--verify-mb", type=int, default=1024)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--only", choices=("push", "verify"), default=None, help="run one half only")
    args = parser.parse_args()
    reason = missing_tools()
    if reason:
        raise SystemExit(reason)
    work = Path(tempfile.mkdtemp(prefix="bench-transport-", dir=args.work))
    try:
        print(f"load average before: {os.getloadavg()[0]:.1f}; cores: {os.cpu_count()}")
        if args.only != "verify":
            _push_half(args, work)
        if args.only != "push":
            verify = work / "verify"
            verify_bytes = _write_submission(verify, [16 * 2**20] * (args.verify_mb // 16), "verify")
            results = bench_verify(verify, args.runs)
            print(_table("receive verification (size + sha256 of every file)", results, verify_bytes / 1e6,
                         "coreutils sha256sum (1 process)"))  # fmt: skip
        print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _push_half(args: argparse.Namespace, work: Path) -> None:
    large = work / "large"
    large_bytes = _write_submission(large, [args.large_mb * 2**20 // 8] * 8, "large")
    series = work / "series"
    series_bytes = _write_submission(series, [args.file_kb * 1024] * args.files, "series")
    warm_up = work / "warm-up"
    _write_submission(warm_up, [1024], "warm-up")
    with ssh_server(work / "sshd") as server:
        print(f"sshd on 127.0.0.1:{server.port}, chrooted: {server.chrooted}\n")
        command = [COHORTPOOL, "push", "--known-hosts", str(server.known_hosts), "-i", str(server.client_key)]
        _clear(server.inbox / "warm-up")
        _timed_process([*command, str(warm_up), server.url(f"{server.remote_inbox}/warm-up")])  # caches .pyc
        for name, folder, size in (
            ("large files", large, large_bytes),
            ("CT-slice files", series, series_bytes),
        ):
            results = bench_push(server, folder, args.runs)
            print(_table(f"push over SFTP vs scp, {name}", results, size / 1e6, "scp") + "\n")


if __name__ == "__main__":
    main()
