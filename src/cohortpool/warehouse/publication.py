"""Publish the read-only copy of the warehouse that analysts, BI tools and the report read.

DuckDB lets one process write a file, and while it does nobody else may open it; an analyst's open
connection in turn makes the writer wait. So the private warehouse (``OUT/warehouse.duckdb``) is the
loader's alone, and after each successful load the hub publishes ``OUT/published/warehouse.duckdb``: a
complete, checkpointed copy with every table, view, macro and comment, put in place by an atomic
rename. The loader never opens the published file, it only renames a new one over it, so nothing a
reader does can delay a load; a reader holding the previous copy open keeps its snapshot (the
replaced file lives on, unlinked, until its last connection closes), and the next open sees the new
night. Readers open it with :func:`cohortpool.warehouse.open_reader`.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cohortpool.warehouse import sql
from cohortpool.warehouse.connect import WarehouseMissingError, connect, open_reader
from cohortpool.warehouse.dictionary import write_dictionary_html
from cohortpool.warehouse.migrate import migrate

#: folder beside the private warehouse holding what readers may open
PUBLISHED_DIR = "published"
#: the data dictionary page written beside the published copy
DICTIONARY_PAGE = "dictionary.html"


class PublishError(RuntimeError):
    """The published copy could not be written; the previous one (if any) is still in place."""


@dataclass(frozen=True)
class PublishResult:
    """What a publish wrote."""

    path: Path
    dictionary: Path
    #: the last load the copy holds (``raw.batches.load_seq``; 0 for a warehouse without loads)
    load_seq: int
    bytes: int
    seconds: float


def published_path(db_path: str | Path) -> Path:
    """Where the published copy of the warehouse at ``db_path`` lives: ``<folder>/published/<name>``."""
    path = Path(db_path)
    return path.parent / PUBLISHED_DIR / path.name


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(source: Path, partial: Path) -> None:
    """Copy the file's bytes (``copy_file_range``/``sendfile`` under shutil), flushed to the disk."""
    shutil.copyfile(source, partial)
    _fsync(partial)
    partial.chmod(0o444)  # a published copy is only ever read; refresh it by publishing again


def _last_load(con: duckdb.DuckDBPyConnection) -> int:
    return int(sql.query_rows(con, "load/select_next_load_seq")[0][0]) - 1


def publish(
    db_path: str | Path, published: str | Path | None = None, *, wait_seconds: float = 0.0
) -> PublishResult:
    """Publish a complete read-only copy of the warehouse at ``db_path``.

    Takes the warehouse's writer lock (so no load runs meanwhile; ``wait_seconds`` as for
    :func:`~cohortpool.warehouse.connect.connect`), brings the schema and views up to date, checkpoints
    (every committed row into the file itself, none left in the WAL), copies the file beside the target,
    checks that the copy opens and holds the same last load, and renames it over the target. The data
    dictionary page is written beside it.

    Parameters
    ----------
    db_path
        The private warehouse.
    published
        The published copy (default :func:`published_path`).

    Raises
    ------
    WarehouseMissingError
        No warehouse at ``db_path``.
    PublishError
        The copy could not be written (e.g. a full disk: the message names the folder and its free
        space) or did not read back; the previous published copy is untouched.
    """
    started = time.perf_counter()
    source = Path(db_path)
    target = Path(published) if published is not None else published_path(source)
    if not source.exists():
        raise WarehouseMissingError(f"no warehouse at {source}: nothing to publish (run cohortpool load)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    con = connect(source, wait_seconds=wait_seconds)
    try:
        migrate(con)
        sql.run_sql(con, "load/checkpoint")
        load_seq = _last_load(con)
        _copy(source, partial)
        _check_copy(partial, load_seq)
        dictionary = write_dictionary_html(con, target.parent / DICTIONARY_PAGE)
        partial.replace(target)
        _fsync(target.parent)
    except OSError as exc:
        free = shutil.disk_usage(target.parent).free if target.parent.exists() else 0
        raise PublishError(
            f"could not publish {source} to {target} ({exc}; {free / 2**20:.0f} MiB free in "
            f"{target.parent}); the previous published copy is unchanged: free space and publish again "
            "(cohortpool db publish)"
        ) from exc
    finally:
        con.close()
        partial.unlink(missing_ok=True)
    return PublishResult(target, dictionary, load_seq, target.stat().st_size, time.perf_counter() - started)


def _reader_last_load(path: Path) -> int:
    reader = open_reader(path)
    try:
        return _last_load(reader)
    finally:
        reader.close()


def is_published(db_path: str | Path, published: str | Path | None = None) -> bool:
    """Whether the published copy exists and holds the warehouse's last load (nothing to publish).

    A run that loads nothing new still publishes when an earlier run loaded and stopped before it could
    publish. Opens both files read-only; the caller holds the warehouse (no load runs meanwhile).
    """
    source = Path(db_path)
    target = Path(published) if published is not None else published_path(source)
    if not target.exists():
        return False
    try:
        return _reader_last_load(target) == _reader_last_load(source)
    except duckdb.Error:  # an unreadable copy (or one from before a migration): publish it again
        return False


def _check_copy(partial: Path, load_seq: int) -> None:
    """The copy opens as a warehouse and holds the same last load (a torn copy is never published)."""
    try:
        reader = open_reader(partial)
        try:
            copied = _last_load(reader)
        finally:
            reader.close()
    except duckdb.Error as exc:
        raise PublishError(
            f"the copy {partial} does not open as a warehouse ({exc}); nothing published"
        ) from exc
    if copied != load_seq:
        raise PublishError(
            f"the copy {partial} holds load {copied}, the warehouse load {load_seq}; nothing published"
        )
