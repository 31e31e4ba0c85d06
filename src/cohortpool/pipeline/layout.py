"""Where a run writes (documented in the README, "Running nightly").

::

    OUT/landing/                      site drops (``cohortpool demo`` only; ``run`` reads LANDING_DIR)
    OUT/state/                        ingest state: nights already processed, PACS watermarks (site-internal)
    OUT/vault/<site>/                 site-private: ledger, crosswalk, quarantined originals
    OUT/submissions/<site>/<night>/   what leaves a site (de-identified DICOM, tables, submission.json)
    OUT/validated/<site>/<night>/     validated batches, each with its Data Docs (data_docs/index.html)
    OUT/warehouse.duckdb              the hub's warehouse
    OUT/report/                       the consortium report (report.html, tables, internal/)
    OUT/.prefect/                     Prefect's home, task result cache and scratch space for this run
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class RunLayout:
    """The folders of one output directory; every path is derived from ``out``, nothing is created."""

    out: Path

    @property
    def landing(self) -> Path:
        return self.out / "landing"

    @property
    def state(self) -> Path:
        return self.out / "state"

    def vault(self, site_id: str) -> Path:
        return self.out / "vault" / site_id

    @property
    def submissions(self) -> Path:
        return self.out / "submissions"

    def submission(self, site_id: str, night: str) -> Path:
        return self.submissions / site_id / night

    def validated(self, site_id: str, night: str) -> Path:
        return self.out / "validated" / site_id / night

    @property
    def warehouse(self) -> Path:
        return self.out / "warehouse.duckdb"

    @property
    def report(self) -> Path:
        return self.out / "report"

    @property
    def prefect_home(self) -> Path:
        return self.out / ".prefect"

    @property
    def results(self) -> Path:
        """Prefect's persisted task results (the cache that lets a re-run skip finished work)."""
        return self.prefect_home / "results"

    @property
    def scratch(self) -> Path:
        """TMPDIR for Prefect's and Dask's scratch files, so nothing lands in the system temp folder."""
        return self.prefect_home / "tmp"

    @property
    def lock_file(self) -> Path:
        return self.out / ".run.lock"

    @contextmanager
    def exclusive(self, on_wait: Callable[[str], None], *, wait: bool = True) -> Iterator[None]:
        """Hold the output folder for one run at a time; a second run says why it waits, then waits.

        Two runs on one folder would both de-identify the same night into the same staging folders and
        both write the warehouse. With ``wait=False`` a held folder raises :class:`FolderBusyError`
        (naming the holder's PID) instead of waiting.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        with hold(self.lock_file, f"another run (pid {{pid}}) is using {self.out}", on_wait, wait=wait):
            yield


class FolderBusyError(RuntimeError):
    """Another process holds the lock (``pid``: the holder's process id, or None when unknown)."""

    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


def lock_holder(handle: IO[str]) -> int | None:
    """The PID a lock file names: its holder writes it right after taking the lock, so an empty file
    means "just taken": read again for a moment before calling the holder unknown."""
    for _ in range(20):
        handle.seek(0)
        text = handle.read().strip()
        if text.isdigit():
            return int(text)
        time.sleep(0.05)
    return None


@contextmanager
def hold(lock_file: Path, busy: str, on_wait: Callable[[str], None], *, wait: bool = True) -> Iterator[None]:
    """Hold ``lock_file`` exclusively, writing this process's PID into it.

    An OS file lock (``flock``, released by the kernel when its process dies, so a crash or ``kill -9``
    never leaves it stuck) rather than a lock file that outlives its process; ``filelock`` is not among
    the project's locked dependencies and would wrap the same call. ``busy`` is the message when another
    process holds it, with ``{pid}`` for the holder's PID: passed to ``on_wait`` before waiting, or
    raised as :class:`FolderBusyError` when ``wait`` is False.
    """
    with lock_file.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = lock_holder(handle)
            message = busy.replace("{pid}", str(pid) if pid is not None else "unknown")
            if not wait:
                raise FolderBusyError(message, pid) from None
            on_wait(f"{message}: waiting for it to finish")
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
