"""Rewrite the warehouse into a fresh file, so erased rows leave no bytes behind.

DuckDB's ``DELETE`` removes rows from every query, but the bytes of the deleted rows can stay in the
file's blocks (and so in the published byte copy) until DuckDB happens to reuse them: a withdrawn
patient's values would still be readable with a hex editor. After a load that erased rows, the
warehouse is copied with ``COPY FROM DATABASE`` (tables, constraints, comments, views, macros and the
live rows only) into a fresh file beside it, which is renamed over the old one. The old file stays
attached read-write (holding its writer lock) until the rename is done, so no load can slip in between.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from cohortpool.warehouse import sql
from cohortpool.warehouse.connect import opened


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(fresh: Path) -> None:
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
        leftover.unlink(missing_ok=True)


def compact(db_path: str | Path, *, wait_seconds: float = 0.0) -> None:
    """Replace the warehouse at ``db_path`` by a fresh copy holding only its live rows."""
    path = Path(db_path)
    fresh = path.with_name(f".{path.name}.{os.getpid()}.compact")
    _remove(fresh)

    def attach() -> duckdb.DuckDBPyConnection:
        con = duckdb.connect()
        try:
            sql.run_sql(con, "load/attach_compact_source", path=str(path))
        except BaseException:
            con.close()
            raise
        return con

    con = opened(path, attach, wait_seconds)
    try:
        sql.run_sql(con, "load/copy_warehouse", target=str(fresh))
        _fsync(fresh)
        fresh.replace(path)
        _fsync(path.parent)
    finally:
        con.close()
        _remove(fresh)
