"""The hub half: submission -> validated batch -> warehouse -> published copy, and the checks across sites.

Each function is one hop between stages that may not import each other, returning the small, PHI-free
records of :mod:`cohortpool.pipeline.records` that the flows pass on and the night's summary counts.

Site-nights are validated in parallel in worker processes (:class:`ValidationWorkers`: GX is not
thread-safe, so threads would take turns), each worker paying the Validator's fixed costs once for the
run; loads stay in the caller, one transaction at a time, in the order the caller chooses. A validated
batch depends only on its submission, so the bytes are the same whichever worker validated it and in
whatever order the workers finished.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from cohortpool.contract.csvio import formula_safe
from cohortpool.contract.files import sha256_file
from cohortpool.contract.processes import exit_when_orphaned
from cohortpool.pipeline.erasure import ErasureError, ErasureSummary, content_as_received, erase_withdrawn
from cohortpool.pipeline.records import LoadSummary, SubmissionSummary, ValidationSummary
from cohortpool.pipeline.status import manifest_counts
from cohortpool.validate import process_validator, validate_submission
from cohortpool.validate.distribution import compare_sites
from cohortpool.warehouse import (
    BatchError,
    PublishError,
    PublishResult,
    WarehouseLockedError,
    checksum,
    is_published,
    load_batch,
    publish,
    published_path,
    withdrawn_by_site,
)

__all__ = [
    "LOAD_FAILURES",
    "PublishError",
    "ValidationWorkerDied",
    "ValidationWorkers",
    "WarehouseLockedError",
    "compare_site_distributions",
    "erase_withdrawn_files",
    "find_submissions",
    "load_into_warehouse",
    "publish_warehouse",
    "published_path",
    "validate_in_worker",
    "validate_into_batch",
    "validation_workers",
    "warehouse_checksum",
]

#: a batch the warehouse refuses (a count that is not a count, a batch of another site): the data's doing,
#: one line for its site-night, no traceback (:func:`cohortpool.tasks.expected_failures`); and files of
#: withdrawn patients that could not be erased after a load (a full disk: the next load erases them)
LOAD_FAILURES: tuple[type[Exception], ...] = (BatchError, ErasureError)

log = logging.getLogger(__name__)


def find_submissions(root: Path) -> list[SubmissionSummary]:
    """Every submission under ``root/<site>/<night>/`` (what sites delivered to the hub).

    One folder never stops the others: each is named by its folder (``<site>/<night>``, the layout
    ``receive`` admits to), and its ``submission.json`` is read defensively, since one copied in by hand
    was never received. A manifest that is not a submission's (not JSON, no site or night, a file list
    that does not hold) is listed all the same, with no counts, so that the run's verify step refuses it
    into ``OUT/rejected`` with its reason and that site-night alone fails. Counts that are missing or not
    non-negative integers are left out, with a warning naming the folder: the night's summary then shows
    no de-identification counts for it.
    """
    found = []
    for manifest in sorted(root.glob("*/*/submission.json")):
        folder = manifest.parent
        try:
            sha256 = sha256_file(manifest)
        except OSError as exc:
            # verify reads it again, refuses it and moves it to OUT/rejected with the reason
            log.warning("%s: cannot be read (%s): the verify step refuses it", manifest, exc.strerror or exc)
            sha256 = "unreadable"
        counts, why = manifest_counts(manifest)
        if why is not None:
            log.warning(
                "%s: %s; the night's de-identification counts are unknown: have the site package and push "
                "the night again (the verify step refuses a manifest that is not a submission's)",
                manifest,
                why,
            )
        found.append(SubmissionSummary(folder.parent.name, folder.name, folder, sha256, counts, {}))
    return found


def validate_into_batch(
    submission_dir: Path, validated_dir: Path, progress: Callable[[int, int], None] | None = None
) -> ValidationSummary:
    """Submission -> validated batch: accepted rows, quarantine, warnings, Data Docs.

    A submission the hub has erased withdrawn patients from is not validated again while its batch is
    there (:func:`_batch_of_erased`): validating what is left would give another batch than the one
    loaded, under the same batch id, which the load refuses. Its batch is the one validated before.
    """
    kept = _batch_of_erased(submission_dir, validated_dir)
    if kept is not None:
        return kept
    outcome = validate_submission(submission_dir, validated_dir, progress=progress)
    tables = {
        name: {
            "rows_in": t.rows_in,
            "accepted": t.accepted,
            "quarantined": t.quarantined,
            "warnings": t.warnings,
            "rejected": t.rejected,
        }
        for name, t in outcome.tables.items()
    }
    return ValidationSummary(outcome.site_id, outcome.night, outcome.batch_id, outcome.out_dir, tables)


def _batch_of_erased(submission_dir: Path, validated_dir: Path) -> ValidationSummary | None:
    """The batch in ``validated_dir`` when it was validated from ``submission_dir`` as received and the
    hub has erased from the submission since; None otherwise (validate as usual)."""
    received = content_as_received(submission_dir)
    if received is None:
        return None
    try:
        summary = json.loads((validated_dir / "summary.json").read_text(encoding="utf-8"))
        if summary["submission_sha256"] != received:
            return None
        tables = {
            name: {k: t[k] for k in ("rows_in", "accepted", "quarantined", "warnings", "rejected")}
            for name, t in summary["tables"].items()
        }
        return ValidationSummary(
            summary["site_id"], summary["night"], summary["batch_id"], validated_dir, tables
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


class ValidationWorkerDied(RuntimeError):
    """A site-night's validation ended its worker process (killed, out of memory, a crash in C code)."""


def _warm_up() -> None:
    """Build the worker's Validator (imports, suites, GX, the DuckDB engine) before its first batch."""
    process_validator()


class ValidationWorkers:
    """Worker processes validating site-nights in parallel, each with its own Validator for the run.

    Started with ``spawn`` (a fresh interpreter: forking a process that runs Prefect's threads and event
    loop is not safe), and warmed up at once, so the imports and the suites are ready by the time the
    first submission arrives. :meth:`validate` may be called from many threads; it blocks until its
    batch is written and returns what :func:`validate_into_batch` returns, or raises what it raised.

    A worker that dies takes the pool's other running batches with it (``BrokenProcessPool``); each of
    those is then validated again alone, in a process of its own, so only the site-night that kills its
    worker fails (:class:`ValidationWorkerDied`) and the others go on. Call :meth:`close` when done.
    """

    def __init__(
        self,
        processes: int,
        *,
        warm: bool = True,
        target: Callable[[Path, Path], ValidationSummary] | None = None,
    ) -> None:
        self.processes = max(1, processes)
        #: what a worker runs per site-night (tests hand in a module-level stand-in that can crash)
        self.target = target or validate_into_batch
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._alone = threading.BoundedSemaphore(self.processes)
        self._pool = self._new_pool(warm)
        self.owner = os.getpid()

    def _new_pool(self, warm: bool) -> ProcessPoolExecutor:
        # the workers end with the run, kill -9 included: none is left holding the run's pipes or the key
        pool = ProcessPoolExecutor(
            self.processes, mp_context=self._context, initializer=exit_when_orphaned, initargs=(os.getpid(),)
        )
        if warm:
            for _ in range(self.processes):
                pool.submit(_warm_up)
        return pool

    def _submit(
        self, pool: ProcessPoolExecutor, submission_dir: Path, validated_dir: Path
    ) -> Future[ValidationSummary]:
        return pool.submit(self.target, submission_dir, validated_dir)

    def validate(self, submission_dir: Path, validated_dir: Path) -> ValidationSummary:
        """Validate one submission into ``validated_dir`` in a worker process."""
        with self._lock:
            pool = self._pool
        try:
            return self._submit(pool, submission_dir, validated_dir).result()
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:  # the first to notice replaces the pool for the batches to come
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = self._new_pool(warm=False)
        log.warning("a validation worker died: validating %s again in a process of its own", submission_dir)
        alone_pool = ProcessPoolExecutor(
            1, mp_context=self._context, initializer=exit_when_orphaned, initargs=(os.getpid(),)
        )
        with self._alone, alone_pool as alone:
            try:
                return self._submit(alone, submission_dir, validated_dir).result()
            except BrokenProcessPool as exc:
                raise ValidationWorkerDied(
                    f"validating {submission_dir} ended its worker process twice (killed, out of memory or "
                    "a crash); the other site-nights went on"
                ) from exc

    def close(self) -> None:
        """Stop the worker processes (after the batches they are running)."""
        with self._lock:
            self._pool.shutdown(wait=True, cancel_futures=True)


_ACTIVE: list[ValidationWorkers] = []


@contextmanager
def validation_workers(processes: int) -> Iterator[ValidationWorkers | None]:
    """Worker processes for this run's validations (none when ``processes`` < 1: validate in-process).

    While the block runs, :func:`validate_in_worker` in this process hands its batches to them; the flow
    that opens the block owns the processes and stops them when it ends.
    """
    if processes < 1:
        yield None
        return
    workers = ValidationWorkers(processes)
    _ACTIVE.append(workers)
    try:
        yield workers
    finally:
        _ACTIVE.remove(workers)
        workers.close()


def validate_in_worker(submission_dir: Path, validated_dir: Path) -> ValidationSummary:
    """:func:`validate_into_batch` in the run's worker processes when the run opened
    :func:`validation_workers` in this process; in this process otherwise (``.fn()``, a Dask worker)."""
    workers = next((w for w in reversed(_ACTIVE) if w.owner == os.getpid()), None)
    if workers is None:
        return validate_into_batch(submission_dir, validated_dir)
    return workers.validate(submission_dir, validated_dir)


def load_into_warehouse(
    db_path: Path,
    validated_dir: Path,
    wait_seconds: float = 600.0,
    submission_dir: Path | None = None,
    out_dir: Path | None = None,
) -> LoadSummary:
    """Validated batch -> warehouse; if another run holds the warehouse, say so and wait for it.

    With ``submission_dir`` (the submission the batch was validated from) the load also records the
    site's de-identification counts and what the night was released under (k, generalisations), which
    the report's data-quality section shows.

    With ``out_dir`` (the hub's output folder) the values of the site's withdrawn patients are then
    erased from the hub's files under it (:func:`cohortpool.pipeline.erasure.erase_withdrawn`). Here,
    after every load and not only one that withdrew someone, because this is the one step the hub and
    nightly flows and ``cohortpool load`` share, and withdrawal is final: a late older night or a
    re-delivery carrying the patient again is erased as soon as it is loaded. After the load, not
    before: the batch is loaded from the files as validated (its checksum is the one a re-run compares),
    and the warehouse, which holds the list of withdrawals, has the final word on who withdrew.
    """
    waited = False
    try:
        result = load_batch(db_path, validated_dir, submission_dir=submission_dir)
    except WarehouseLockedError:
        waited = True
        log.warning(
            "warehouse %s is held by another run (DuckDB allows one writer): waiting up to %.0f s for it",
            db_path,
            wait_seconds,
        )
        result = load_batch(db_path, validated_dir, wait_seconds=wait_seconds, submission_dir=submission_dir)
    erased = ErasureSummary()
    if out_dir is not None and result.withdrawn:
        erased = erase_withdrawn(out_dir, result.site_id, result.withdrawn)
        if erased.files:
            log.info(
                "%s: %d file(s) rewritten and %d removed under %s for withdrawn patients (erasure.json)",
                result.site_id,
                erased.files_rewritten,
                erased.files_removed,
                out_dir,
            )
    return LoadSummary(
        result.site_id,
        result.batch_id,
        result.status,
        result.load_seq,
        dict(result.rows),
        result.superseded,
        waited,
        result.late_rows,
        result.withdrawn_patients,
        result.erased_rows,
        erased.files,
    )


def erase_withdrawn_files(db_path: Path, out_dir: Path, wait_seconds: float = 600.0) -> ErasureSummary:
    """Erase every site's withdrawn patients from the hub's files under ``out_dir``; the counts.

    The loads erase their own site's folders; this pass, once per run after the loads, also reaches
    what no load of the run touched: a night refused into ``OUT/rejected`` after the site's last load,
    and sites that loaded nothing this run. Withdrawal is final, so every run makes sure.
    """
    total = ErasureSummary()
    for site_id, patients in withdrawn_by_site(db_path, wait_seconds=wait_seconds).items():
        total += erase_withdrawn(out_dir, site_id, patients)
    if total.files:
        log.info(
            "withdrawn patients: %d file(s) rewritten and %d removed under %s (erasure.json)",
            total.files_rewritten,
            total.files_removed,
            out_dir,
        )
    return total


def compare_site_distributions(validated_root: Path, out_csv: Path) -> int:
    """Cross-site distribution warnings over each site's latest accepted clinical rows; returns how many."""
    latest = {
        d.name: sorted(n for n in d.iterdir() if (n / "summary.json").is_file())
        for d in validated_root.iterdir()
        if d.is_dir()
    }
    frames = {
        site: pd.read_parquet(nights[-1] / "accepted" / "clinical.parquet")
        for site, nights in latest.items()
        if nights
    }
    warnings = compare_sites(frames)
    warnings.map(formula_safe).to_csv(out_csv, index=False, lineterminator="\n")
    return len(warnings)


def publish_warehouse(db_path: Path, wait_seconds: float = 600.0) -> Path:
    """Warehouse -> the read-only copy analysts and the report read (``published/`` beside it); its path.

    Run after the night's loads, which are committed by then, so the copy holds them all; a reader with
    the previous copy open keeps it (see :func:`cohortpool.warehouse.publish`). A copy that already holds
    the warehouse's last load is left as it is (a night that loaded nothing new changes no file).
    """
    target = published_path(db_path)
    if is_published(db_path, target):
        return target
    done: PublishResult = publish(db_path, target, wait_seconds=wait_seconds)
    log.info("published %s (load %d, %.1f s)", done.path, done.load_seq, done.seconds)
    return done.path


def warehouse_checksum(db_path: Path) -> str:
    """The content checksum of the analysis views (provenance of the report)."""
    return checksum(db_path, wait_seconds=60.0)
