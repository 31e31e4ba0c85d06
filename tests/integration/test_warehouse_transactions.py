"""The warehouse under real processes: a load killed mid-transaction, and concurrent writers.

The kill test uses the documented test-only hook ``cohortpool load --test-pause-before-commit SECONDS``:
the loader does all of a batch's work inside its transaction (150,000 reads, enough that DuckDB writes
row groups to the file before COMMIT), prints a marker, and sleeps before COMMIT; the test SIGKILLs it
there, which is the worst moment: everything written, nothing committed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from cohortpool.warehouse import WarehouseLockedError, checksum, connect, load_batch
from warehouse_batches import make_tables, write_batch

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.xdist_group("warehouse_processes")]

MARKER = "test hook: paused inside the load transaction"
BIG_PATIENTS = 25_000  # 150,000 reads and 150,000 series: more than one DuckDB row group (122,880)


def _snapshot(db: Path) -> dict[str, list[tuple[object, ...]]]:
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
        return {
            f"{s}.{t}": sorted(con.execute(f'SELECT * FROM "{s}"."{t}"').fetchall(), key=repr)
            for s, t in tables
        }


def _start_load(batch: Path, db: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cohortpool", "load", str(batch), "--db", str(db), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_marker(proc: subprocess.Popen[str], timeout: float = 120) -> None:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if MARKER in line:
            return
    proc.kill()
    raise AssertionError(f"loader never reached the pause; stderr: {''.join(seen)[-2000:]}")


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("batches")
    return {
        "base": write_batch(root / "base", "site01", "2026-11-01", make_tables("site01", 20, seed=1)),
        "small": write_batch(root / "small", "site03", "2026-11-01", make_tables("site03", 20, seed=5)),
        "big": write_batch(root / "big", "site02", "2026-11-02", make_tables("site02", BIG_PATIENTS, seed=3)),
    }


def _disk_bytes(db: Path) -> int:
    wal = db.with_name(db.name + ".wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def test_killed_load_leaves_the_warehouse_as_it_was(tmp_path: Path, batches: dict[str, Path]) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, batches["base"])
    before = _snapshot(db)
    before_checksum = checksum(db)
    bytes_before = _disk_bytes(db)

    proc = _start_load(batches["big"], db, "--test-pause-before-commit", "120")
    _wait_for_marker(proc)
    grown = _disk_bytes(db) - bytes_before
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # the transaction had really written to disk before it died (otherwise the test proves little)
    assert grown > 1_000_000, f"only {grown} bytes written before the kill"

    # reopen read-write first: this replays (and discards) whatever the dead writer left behind
    connect(db).close()
    assert _snapshot(db) == before
    assert checksum(db) == before_checksum

    # the warehouse is healthy: the same batch now loads in full
    result = load_batch(db, batches["big"])
    assert result.status == "loaded"
    assert result.load_seq == 2
    assert result.rows["reads"] == BIG_PATIENTS * 6


def test_second_writer_fails_clearly_or_waits_and_never_corrupts(
    tmp_path: Path, batches: dict[str, Path]
) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, batches["base"])
    first = _start_load(batches["big"], db, "--test-pause-before-commit", "6")
    _wait_for_marker(first)

    # a second writer without --wait: refused at once, naming the file and the way out
    refused = subprocess.run(
        [sys.executable, "-m", "cohortpool", "load", str(batches["small"]), "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1
    assert "is locked by another process" in refused.stderr
    assert str(db) in refused.stderr
    assert "--wait" in refused.stderr
    # an analyst's read-only open is refused the same way while a writer holds the file
    with pytest.raises(WarehouseLockedError, match="Conflicting lock"):
        connect(db, read_only=True)

    # a second writer with --wait queues behind the first and then loads
    waiter = _start_load(batches["small"], db, "--wait", "120")
    out_first, _ = first.communicate(timeout=180)
    out_waiter, err_waiter = waiter.communicate(timeout=180)
    assert first.returncode == 0, out_first
    assert waiter.returncode == 0, err_waiter
    assert "loaded site02_2026-11-02" in out_first
    assert "loaded site03_2026-11-01" in out_waiter

    with duckdb.connect(str(db), read_only=True) as con:
        loads = con.execute("SELECT load_seq, site_id FROM raw.batches ORDER BY load_seq").fetchall()
        counts = con.execute("SELECT site_id, patients FROM analysis.site_counts ORDER BY 1, 2").fetchall()
        reads = con.execute("SELECT count(*) FROM raw.reads").fetchone()
    assert loads == [(1, "site01"), (2, "site02"), (3, "site03")]
    assert sum(p for s, p in counts if s == "site02") == BIG_PATIENTS
    assert reads == ((20 + BIG_PATIENTS + 20) * 6,)


def test_wait_gives_up_with_the_lock_error(tmp_path: Path, batches: dict[str, Path]) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, batches["base"])
    holder = _start_load(batches["small"], db, "--test-pause-before-commit", "8")
    _wait_for_marker(holder)
    started = time.monotonic()
    with pytest.raises(WarehouseLockedError, match=r"after waiting 1\.5 s"):
        connect(db, wait_seconds=1.5)
    assert time.monotonic() - started >= 1.5
    holder.communicate(timeout=120)
    assert holder.returncode == 0
