"""Open the warehouse file: one writer at a time, with a clear error (or a wait) when it is locked."""

from __future__ import annotations

import contextlib
import time
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
    holder. It never touches the file.

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
    if read_only and not path.exists():
        raise WarehouseMissingError(
            f"no warehouse at {path}: run `cohortpool db migrate --db {path}` or `cohortpool load` first"
        )
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            if not _is_lock_conflict(exc):
                raise
            if time.monotonic() >= deadline:
                waited = f" after waiting {wait_seconds:g} s" if wait_seconds > 0 else ""
                raise WarehouseLockedError(
                    f"warehouse {path} is locked by another process{waited} (DuckDB allows one writer "
                    f"and no readers beside it): {exc}. Wait for that load to finish, or retry with "
                    "--wait SECONDS."
                ) from exc
            time.sleep(poll_seconds)
            continue
        sql.run_sql(con, "load/set_session")
        return con


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction, if DuckDB has not already.

    A COMMIT that fails (a full disk: the WAL cannot be written) aborts the transaction itself, and a
    second ROLLBACK then raises "no transaction is active", which would hide the real error.
    """
    with contextlib.suppress(duckdb.TransactionException):
        con.rollback()
