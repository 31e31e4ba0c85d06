"""Open the warehouse file: one writer at a time, with a clear error (or a wait) when it is locked."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

from cohortpool.warehouse import sql


class WarehouseError(RuntimeError):
    """Something about the warehouse file itself is wrong (locked, missing)."""


class WarehouseLockedError(WarehouseError):
    """Another process holds the DuckDB file lock."""


class WarehouseMissingError(WarehouseError):
    """A read-only open of a warehouse that was never created."""


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    # DuckDB reports a held file lock as a generic IOException; its text is the only thing that tells
    # it apart from other I/O failures, so we look for the words of its lock message.
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def opened(
    path: Path,
    open_once: Callable[[], duckdb.DuckDBPyConnection],
    wait_seconds: float,
    poll_seconds: float = 0.2,
) -> duckdb.DuckDBPyConnection:
    """``open_once()``, retried while another process holds the file lock (up to ``wait_seconds``)."""
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    while True:
        try:
            con = open_once()
        except duckdb.Error as exc:
            if not _is_lock_conflict(exc):
                raise
            if time.monotonic() >= deadline:
                waited = f" after waiting {wait_seconds:g} s" if wait_seconds > 0 else ""
                raise WarehouseLockedError(
                    f"warehouse {path} is locked by another process{waited} (DuckDB allows one writer "
                    f"and no readers beside it): {exc}. Wait for that load to finish, or retry with "
                    "--wait SECONDS; analysts read the published copy (cohortpool db publish), which no "
                    "load ever locks."
                ) from exc
            time.sleep(poll_seconds)
            continue
        sql.run_sql(con, "load/set_session")
        return con


def connect(
    db_path: str | Path,
    read_only: bool = False,
    *,
    wait_seconds: float = 0.0,
    poll_seconds: float = 0.2,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse at ``db_path``.

    DuckDB lets one process open a file read-write, and while it does no other process may open it at
    all (not even read-only). Loads therefore run one at a time; a second one either waits for the lock
    (``wait_seconds``) or stops with :class:`WarehouseLockedError`, which names the file and the
    holder. It never touches the file. A read-only open goes through :func:`open_reader`, the one way
    readers open a warehouse.

    Parameters
    ----------
    db_path
        The DuckDB file; created (with its folder) by a read-write open.
    read_only
        Analysts' and reports' mode: never writes, fails if the file does not exist.
    wait_seconds
        How long to keep retrying while another process holds the lock (0 = fail at once).
    poll_seconds
        Pause between retries.
    """
    path = Path(db_path)
    if read_only:
        return open_reader(path, wait_seconds=wait_seconds, poll_seconds=poll_seconds)
    path.parent.mkdir(parents=True, exist_ok=True)
    return opened(path, lambda: duckdb.connect(str(path)), wait_seconds, poll_seconds)


#: the catalog name a reader's connection gives the warehouse (``USE``d, so queries need no prefix)
READER_CATALOG = "warehouse"


def open_reader(
    db_path: str | Path, *, wait_seconds: float = 0.0, poll_seconds: float = 0.2
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a warehouse: the one seam every reader opens through.

    Analysts, BI exports, ``cohortpool report``, checksums and exports all open the warehouse here, so
    moving readers to another storage (e.g. a DuckLake catalogue, whose ``ATTACH`` gives snapshots to
    concurrent readers) changes this function and nothing else.

    The file is ``ATTACH``-ed read-only to a fresh in-memory connection and made the default catalog
    (:data:`READER_CATALOG`), rather than opened with ``duckdb.connect(path)``: DuckDB caches database
    instances by path within a process, so a second ``connect`` while an earlier connection is open
    would hand back the earlier snapshot even after a newer published copy was renamed into place. An
    ``ATTACH`` always reads the file that is at the path now.
    """
    path = Path(db_path)
    if not path.exists():
        raise WarehouseMissingError(
            f"no warehouse at {path}: run `cohortpool db migrate --db {path}`, `cohortpool load` or "
            "`cohortpool db publish` first"
        )

    def attach() -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        try:
            sql.run_sql(con, "load/attach_reader", path=str(path))
        except BaseException:
            con.close()
            raise
        return con

    return opened(path, attach, wait_seconds, poll_seconds)


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if DuckDB has not already.

    A COMMIT that fails (a full disk: the WAL cannot be written) aborts the transaction itself, and a
    second ROLLBACK then raises "no transaction is active", which would hide the real error.
    """
    with contextlib.suppress(duckdb.TransactionException):
        con.rollback()
