"""The warehouse under real processes: a load killed mid-transaction, concurrent writers, and readers.

The kill test runs ``cohortpool load`` through the test-only launcher
``tests/hardening/pausing_cohortpool.py`` (nothing in the product pauses): the loader does all of a
batch's work inside its transaction
(150,000 reads, enough that DuckDB writes row groups to the file before COMMIT), prints a marker, and
sleeps before COMMIT; the test SIGKILLs it there, which is the worst moment: everything written,
nothing committed.
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
from typer.testing import CliRunner

from cohortpool.cli import app
from cohortpool.warehouse import WarehouseLockedError, checksum, connect, load_batch, published_path
from warehouse_batches import build_once, make_tables, warehouse_rows, write_batch

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BIG_PATIENTS = 25_000  # 150,000 reads and 150,000 series: more than one DuckDB row group (122,880)
LAUNCHER = Path(__file__).resolve().parents[1] / "hardening" / "pausing_cohortpool.py"
MARKER = "test pause at load"


def _start_load(batch: Path, db: Path, *, pause: float | None = None) -> subprocess.Popen[str]:
    """`cohortpool load BATCH --db DB` in a subprocess; with ``pause``, through the test-only launcher
    that sleeps inside the load's open transaction, after its checks, before COMMIT."""
    env = dict(os.environ)
    command = [sys.executable, "-m", "cohortpool"]
    if pause:
        env |= {"COHORTPOOL_TEST_PAUSE_AT": "load", "COHORTPOOL_TEST_PAUSE_SECONDS": str(pause)}
        command = [sys.executable, str(LAUNCHER)]
    return subprocess.Popen(
        [*command, "load", str(batch), "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
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


def _write_batches(root: Path) -> None:
    write_batch(root / "base", "site01", "2026-11-01", make_tables("site01", 20, seed=1))
    write_batch(root / "small", "site03", "2026-11-01", make_tables("site03", 20, seed=5))
    write_batch(root / "other", "site04", "2026-11-01", make_tables("site04", 20, seed=6))
    write_batch(root / "big", "site02", "2026-11-02", make_tables("site02", BIG_PATIENTS, seed=3))


@pytest.fixture(scope="session")
def warehouse_batches_on_disk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three validated batches, written once per session and shared (read-only) by xdist workers."""
    root = build_once(tmp_path_factory.getbasetemp(), "warehouse_batches", _write_batches)
    return {name: root / name for name in ("base", "small", "other", "big")}


def _disk_bytes(db: Path) -> int:
    wal = db.with_name(db.name + ".wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def test_killed_load_leaves_the_warehouse_as_it_was(
    tmp_path: Path, warehouse_batches_on_disk: dict[str, Path]
) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, warehouse_batches_on_disk["base"])
    before = warehouse_rows(db)
    before_checksum = checksum(db)
    bytes_before = _disk_bytes(db)

    proc = _start_load(warehouse_batches_on_disk["big"], db, pause=120)
    _wait_for_marker(proc)
    grown = _disk_bytes(db) - bytes_before
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # the transaction had really written to disk before it died (otherwise the test proves little)
    assert grown > 1_000_000, f"only {grown} bytes written before the kill"

    # reopen read-write first: this replays (and discards) whatever the dead writer left behind
    connect(db).close()
    assert warehouse_rows(db) == before
    assert checksum(db) == before_checksum

    # the warehouse is healthy: the same batch now loads in full
    result = load_batch(db, warehouse_batches_on_disk["big"])
    assert result.status == "loaded"
    assert result.load_seq == 2
    assert result.rows["reads"] == BIG_PATIENTS * 6


def test_second_writer_fails_clearly_or_waits_and_never_corrupts(
    tmp_path: Path, warehouse_batches_on_disk: dict[str, Path]
) -> None:
    batches = warehouse_batches_on_disk
    db = tmp_path / "w.duckdb"
    load_batch(db, batches["base"])
    first = _start_load(batches["other"], db, pause=10)
    _wait_for_marker(first)
    paused_at = time.monotonic()

    # a second `cohortpool load` without --wait: refused at once, naming the file and the way out
    # (in-process through the real CLI app, so it runs while the first writer is surely still paused)
    refused = CliRunner().invoke(app, ["load", str(batches["small"]), "--db", str(db)])
    assert refused.exit_code == 3  # the stage could not run: the warehouse is held
    assert "is locked by another process" in refused.output
    assert str(db) in refused.output
    assert "--wait" in refused.output
    # an analyst's read-only open is refused the same way while a writer holds the file
    with pytest.raises(WarehouseLockedError, match="Conflicting lock"):
        connect(db, read_only=True)
    assert time.monotonic() - paused_at < 10, "the checks above ran after the first writer resumed"

    # a second writer that waits queues behind the first and loads once the lock is free
    queued = load_batch(db, batches["small"], wait_seconds=300)
    waited = time.monotonic() - paused_at
    out_first, err_first = first.communicate(timeout=180)
    assert first.returncode == 0, err_first
    assert "loaded site04_2026-11-01" in out_first
    assert queued.status == "loaded"
    assert waited >= 5, f"the waiting writer got in after {waited:.1f} s, before the first one committed"

    with duckdb.connect(str(db), read_only=True) as con:
        loads = con.execute("SELECT load_seq, site_id FROM raw.batches ORDER BY load_seq").fetchall()
        patients = con.execute(
            "SELECT site_id, count(*) FROM analysis.patients GROUP BY 1 ORDER BY 1"
        ).fetchall()
    # both writers' batches are in, whole, in the order they committed
    assert loads == [(1, "site01"), (2, "site04"), (3, "site03")]
    assert patients == [("site01", 20), ("site03", 20), ("site04", 20)]


def test_wait_gives_up_with_the_lock_error(
    tmp_path: Path, warehouse_batches_on_disk: dict[str, Path]
) -> None:
    db = tmp_path / "w.duckdb"
    load_batch(db, warehouse_batches_on_disk["base"])
    holder = _start_load(warehouse_batches_on_disk["small"], db, pause=5)
    _wait_for_marker(holder)
    started = time.monotonic()
    with pytest.raises(WarehouseLockedError, match=r"after waiting 1\.5 s"):
        connect(db, wait_seconds=1.5)
    assert time.monotonic() - started >= 1.5
    holder.communicate(timeout=120)
    assert holder.returncode == 0


# An analyst's session: holds a read-only connection to the published copy open, as a notebook does,
# and answers on stdout how many sites it sees, through that held connection ("held") and through a
# fresh open in the same process ("fresh"), each time the test writes a line to its stdin.
ANALYST = """
import sys, duckdb
from cohortpool.warehouse import open_reader
held = duckdb.connect(sys.argv[1], read_only=True)
count = "SELECT count(DISTINCT site_id) FROM analysis.patients"
for _ in sys.stdin:
    fresh = open_reader(sys.argv[1])
    print(held.execute(count).fetchone()[0], fresh.execute(count).fetchone()[0], flush=True)
    fresh.close()
"""


def test_an_analyst_holding_the_published_copy_never_delays_the_next_load(
    tmp_path: Path, warehouse_batches_on_disk: dict[str, Path]
) -> None:
    batches = warehouse_batches_on_disk
    db = tmp_path / "w.duckdb"
    first = _start_load(batches["base"], db)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    published = published_path(db)
    assert f"published {published}" in out

    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(published)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert analyst.stdin is not None and analyst.stdout is not None
    try:
        analyst.stdin.write("\n")
        analyst.stdin.flush()
        assert analyst.stdout.readline().split() == ["1", "1"]

        # the next night loads and publishes while the analyst's connection stays open: no --wait, so
        # a lock held by the analyst would fail the load at once rather than delay it
        started = time.monotonic()
        second = _start_load(batches["small"], db)
        out, err = second.communicate(timeout=300)
        elapsed = time.monotonic() - started
        assert second.returncode == 0, err
        assert "loaded site03_2026-11-01" in out and f"published {published}" in out
        assert analyst.poll() is None, "the analyst's session ended before the load finished"

        # the held connection keeps its snapshot; any new open, in that process or another, sees night 2
        analyst.stdin.write("\n")
        analyst.stdin.flush()
        assert analyst.stdout.readline().split() == ["1", "2"]
        with duckdb.connect(str(published), read_only=True) as con:
            assert con.execute("SELECT count(DISTINCT site_id) FROM analysis.patients").fetchone() == (2,)
        # and the private warehouse was never opened by a reader: a writer gets it at once
        connect(db).close()
    finally:
        analyst.kill()
        analyst.wait(timeout=30)
    assert elapsed < 120, f"load and publish took {elapsed:.0f} s beside an open analyst connection"
