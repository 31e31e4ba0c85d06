"""Validate one submission into a validated batch (data contract section 3): the stage's library API.

The hub flow calls :func:`validate_submission` per site, then
:func:`cohortpool.validate.distribution.compare_sites` once over every site's accepted clinical rows.

What costs time once and is the same for every submission (importing GX, building its suites and its
Data Docs templates, the DuckDB engine) lives in a :class:`Validator`: build one and call its
:meth:`Validator.validate_submission` for every site-night. :func:`validate_submission` does exactly that
with this process's own Validator (:func:`process_validator`), so plain calls share it too.

Several site-nights at once: use processes, each with its own Validator (GX is not thread-safe; the GX
parts of a Validator are serialised by a lock, so threads are safe but do not run GX in parallel). A
process started by ``fork`` or ``spawn`` builds its Validator on first use; the function
:func:`validate_submission` can be handed to a process pool as it is. Site-nights write to different
``out_dir`` folders and share nothing else on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from cohortpool.contract import MACHINE_ERRNOS
from cohortpool.contract.files import sha256_file
from cohortpool.validate.accepted import write_accepted
from cohortpool.validate.chunks import ChunkedTable, split_in_chunks, validate_in_chunks
from cohortpool.validate.crosstable import check_tables, forget_rows, keep_rows
from cohortpool.validate.docs import GxPages
from cohortpool.validate.findings import ERROR, WARNING, Found, RowFindings, expand
from cohortpool.validate.frames import (
    TableFrames,
    TableRejected,
    read_table,
    release_arrow_memory,
)
from cohortpool.validate.outcome import TableSummary, ValidationOutcome
from cohortpool.validate.quarantine import (
    LinesFile,
    TableSplit,
    split_table,
    unreadable_rows,
)
from cohortpool.validate.run import SuiteRunner, TableRun
from cohortpool.validate.staged import StagedBatch
from cohortpool.validate.submission import Submission, SubmissionError, open_submission
from cohortpool.validate.suites import TABLES, TableSuite, load_suites, suite_path
from cohortpool.validate.withdrawals import Withdrawals, check_withdrawals, write_withdrawals

#: tables larger than this are validated in chunks of about this much of the file (about 10,000 reads
#: rows). 1 MiB, not 2: a 10^6-row night's rows peaked at 291-305 MB with 2 MiB chunks, 270-273 MB with
#: 1 MiB; `validate` takes 12-15 % longer with this and its hand-over (issue 16 item 2;
#: ``benchmarks/bench_tables.py``, figures in ``benchmarks/RESULTS.md``)
CHUNK_BYTES = 1024 * 1024


def _prepare_out_dir(out_dir: Path) -> Path:
    """A fresh staging folder beside ``out_dir``; refuses to replace a folder that is not a batch."""
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / "summary.json").is_file():
        raise SubmissionError(
            f"{out_dir}: exists and is not a validated batch (no summary.json); choose an empty --out"
        )
    staging = out_dir.with_name(out_dir.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    (staging / "accepted").mkdir(parents=True)
    return staging


class Validator:
    """Validates submissions, paying the fixed costs once (module docstring).

    Parameters
    ----------
    suites
        The reviewed suites by table (default: :func:`cohortpool.validate.suites.load_suites`).
    engine
        ``"duckdb"`` (default: SQL generated from the suites, GX for what has no exact translation) or
        ``"gx"`` (GX on pandas for everything); see :mod:`cohortpool.validate.run`.
    """

    def __init__(
        self,
        suites: Mapping[str, TableSuite] | None = None,
        engine: str = "duckdb",
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.suites: dict[str, TableSuite] = dict(load_suites() if suites is None else suites)
        if sorted(self.suites) != sorted(TABLES):
            raise ValueError(f"a Validator needs one suite per table: {', '.join(TABLES)}")
        self.runner = SuiteRunner(engine)
        self.pages = GxPages()
        self.chunk_bytes = chunk_bytes
        self._suite_sha256 = {table: sha256_file(suite.path) for table, suite in self.suites.items()}

    def _validate_tables(
        self, submission: Submission, keys: duckdb.DuckDBPyConnection, scratch: Path
    ) -> tuple[
        dict[str, TableFrames], dict[str, ChunkedTable], dict[str, TableRejected], dict[str, TableRun]
    ]:
        frames: dict[str, TableFrames] = {}
        chunked: dict[str, ChunkedTable] = {}
        rejected: dict[str, TableRejected] = {}
        runs: dict[str, TableRun] = {}
        for table, suite in self.suites.items():
            in_chunks = validate_in_chunks(
                self.runner,
                submission.path,
                suite,
                submission.site_id,
                self.chunk_bytes,
                keys,
                scratch,
                submission.batch_id,
            )
            if in_chunks is not None:
                chunked[table] = in_chunks
                runs[table] = in_chunks.run
                continue
            try:
                frames[table] = read_table(submission.path, suite)
            except TableRejected as exc:
                rejected[table] = exc
                continue
            runs[table] = self.runner.run(suite, frames[table], submission.site_id)
            keep_rows(keys, table, frames[table].typed, 0)
        return frames, chunked, rejected, runs

    def validate_submission(
        self, submission_dir: Path, out_dir: Path, progress: Callable[[int, int], None] | None = None
    ) -> ValidationOutcome:
        """Validate a submission folder and write the validated batch to ``out_dir``.

        ``progress(tables written, tables)`` is called as each table's accepted rows reach the batch's
        staging folder (``out_dir`` appears only once the whole batch is written).

        Raises :class:`~cohortpool.validate.submission.SubmissionError` when the folder is not a
        submission (bad usage); a bad table never raises: it is rejected whole and reported, the others
        still validate.
        """
        return self.stage_submission(submission_dir, out_dir, progress).finish(self.pages)

    def stage_submission(
        self, submission_dir: Path, out_dir: Path, progress: Callable[[int, int], None] | None = None
    ) -> StagedBatch:
        """Everything of :meth:`validate_submission` but its last step (the Data Docs pages, then the
        staging folder renamed to ``out_dir``): :meth:`StagedBatch.finish` does that, in this process or
        in another one (:mod:`cohortpool.validate.handover`)."""
        submission = open_submission(Path(submission_dir))
        out_dir = Path(out_dir)
        # beside the batch, like its staging folder, not in the system's temporary folder: that may be
        # memory (tmpfs), and a run killed with -9 leaves its scratch where the rerun removes it
        scratch = out_dir.with_name(f".{out_dir.name}.scratch")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        try:
            keys = _scratch_database(scratch)
            try:
                return self._validate(submission, out_dir, keys, scratch, progress)
            finally:
                keys.close()
        except (duckdb.IOException, duckdb.TransactionException) as exc:
            raise _as_os_error(exc, scratch) from exc
        except duckdb.OutOfMemoryException as exc:
            # one line for the operator, not DuckDB's advice on settings cohortpool fixes itself
            raise MemoryError(
                f"{submission.path.name}: the validation's scratch database ran out of memory "
                f"({str(exc).splitlines()[0]}); nothing was marked validated: run it again with more "
                "memory free, and report it if it recurs"
            ) from exc
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _validate(
        self,
        submission: Submission,
        out_dir: Path,
        keys: duckdb.DuckDBPyConnection,
        scratch: Path,
        progress: Callable[[int, int], None] | None,
    ) -> StagedBatch:
        """Everything of the batch but its Data Docs, in its staging folder."""
        suites = self.suites
        frames, chunked, rejected, runs = self._validate_tables(submission, keys, scratch)
        # cross-table checks only between tables whose own checks could run
        cross = check_tables(keys, [t for t in [*frames, *chunked] if not runs[t].errored])
        forget_rows(keys, TABLES)

        staging = _prepare_out_dir(out_dir)
        quarantine_lines = LinesFile(staging / "quarantine.csv")
        warning_lines = LinesFile(staging / "warnings.csv")
        summaries: dict[str, TableSummary] = {}
        for done, table in enumerate(TABLES, 1):
            suite = suites[table]
            lineage = {"batch_id": submission.batch_id, "source_file": f"{table}.csv", "source_sha256": ""}
            accepted_path = staging / "accepted" / f"{table}.parquet"
            if table in rejected:
                exc = rejected[table]
                quarantine_lines.append(unreadable_rows(table, exc.rows_in, str(exc)))
                empty = pd.DataFrame({c: pd.Series(dtype=t) for c, t in suite.column_types.items()})
                lineage["source_sha256"] = exc.sha256 or ""
                write_accepted(empty, suite, lineage, accepted_path)
                summaries[table] = TableSummary(
                    exc.file, exc.sha256, exc.rows_in, 0, exc.rows_in, 0, str(exc)
                )
            else:
                own: list[Found] = runs[table].found + [f for f in cross if f.table == table]
                split: TableSplit
                if table in chunked:
                    in_chunks = chunked.pop(table)
                    file, sha256 = in_chunks.file, in_chunks.sha256
                    lineage["source_sha256"] = sha256
                    by_severity = {ERROR: quarantine_lines, WARNING: warning_lines}
                    split = split_in_chunks(in_chunks, own, lineage, accepted_path, keys, by_severity)
                    accepted_rows = split.rows_in - split.quarantined
                else:
                    # the table's frames are let go once split (memory: issue 16 item 2)
                    table_frames = frames.pop(table)
                    file, sha256 = table_frames.file, table_frames.sha256
                    lineage["source_sha256"] = sha256
                    split = split_table(table_frames, suite, expand(own))
                    accepted_rows = len(split.accepted)
                    write_accepted(split.accepted, suite, lineage, accepted_path)
                    del table_frames
                quarantine_lines.append(split.quarantine)
                warning_lines.append(split.warnings)
                summaries[table] = TableSummary(
                    file,
                    sha256,
                    split.rows_in,
                    accepted_rows,
                    split.quarantined,
                    split.warned,
                    split.rejected,
                )
                # the accepted rows live in the parquet file from here on; a table's frames are not kept
                # in memory while the next table is split (issue 16 item 2)
                del split
            release_arrow_memory()
            if summaries[table].rows_in != summaries[table].accepted + summaries[table].quarantined:
                raise AssertionError(f"{table}: rows in != accepted + quarantined (a bug; please report)")
            if progress is not None:
                progress(done, len(TABLES))

        withdrawals = check_withdrawals(submission.path, submission.site_id)
        if withdrawals is not None:
            quarantine_lines.append(withdrawals.quarantine)
            write_withdrawals(withdrawals, submission.site_id, staging)
        checks = [o for run in runs.values() for o in run.outcomes]
        outcome = ValidationOutcome(
            out_dir, submission.site_id, submission.night, submission.batch_id, summaries, checks
        )
        if withdrawals is not None:
            outcome.withdrawn = (len(withdrawals.accepted), len(withdrawals.quarantine))
        outcome.changed = dict(submission.changed)
        summary = _summary(submission, outcome, self._suite_sha256, cross, withdrawals)
        (staging / "summary.json").write_text(
            json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
        results = {table: run.results for table, run in runs.items()}
        return StagedBatch(staging, summary, outcome, results, self.suites)


def _as_os_error(exc: duckdb.Error, scratch: Path) -> Exception:
    """A DuckDB error writing the scratch database, as the OSError it reports (a full disk is then
    handled like any other: one line, exit 3, nothing marked validated); any other DuckDB error as is.

    DuckDB raises its own exception types for a failed write, naming the system's error only in the
    message, so the message is matched against the errors a machine can have.
    """
    for number in MACHINE_ERRNOS:
        if os.strerror(number) in str(exc):
            return OSError(number, os.strerror(number), str(scratch))
    return exc


def _scratch_database(folder: Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB database on disk for what must see whole tables (the uniqueness keys of a table read in
    chunks, every table's cross-table columns): bounded memory, spilling to ``folder`` beyond it.

    64 MB: 10^7 reads checked within it (16 MB failed to pin a block of the cross-table join at 10^6,
    32 MB held). Insertion order is not preserved (less memory): every query that returns rows orders
    them, and positions are read from the position column, never from the output order.
    """
    return duckdb.connect(
        str(folder / "keys.duckdb"),
        config={
            "threads": 1,
            "memory_limit": "64MB",
            "temp_directory": str(folder / "spill"),
            "preserve_insertion_order": False,
        },
    )


_PROCESS_VALIDATORS: dict[tuple[int, tuple[Path, ...]], Validator] = {}
_PROCESS_LOCK = threading.Lock()


def process_validator() -> Validator:
    """This process's Validator for the configured suites, built on first use and then reused.

    Keyed by the process id (a forked child builds its own instead of using its parent's DuckDB
    connection) and by the suite files (settings pointing elsewhere get their own Validator).
    """
    pid = os.getpid()
    key = (pid, tuple(suite_path(table) for table in TABLES))
    with _PROCESS_LOCK:
        if key not in _PROCESS_VALIDATORS:
            # drop this process's Validator for other suites; a parent's (inherited through fork) is
            # left alone: closing its DuckDB database from the child is not safe
            for old in [k for k in _PROCESS_VALIDATORS if k[0] == pid]:
                del _PROCESS_VALIDATORS[old]
            _PROCESS_VALIDATORS[key] = Validator()
        return _PROCESS_VALIDATORS[key]


def validate_submission(
    submission_dir: Path, out_dir: Path, progress: Callable[[int, int], None] | None = None
) -> ValidationOutcome:
    """Validate a submission folder into ``out_dir`` with this process's Validator.

    The same as ``process_validator().validate_submission(submission_dir, out_dir, progress)``; see
    :meth:`Validator.validate_submission`.
    """
    return process_validator().validate_submission(submission_dir, out_dir, progress)


def _summary(
    submission: Submission,
    outcome: ValidationOutcome,
    suite_sha256: dict[str, str],
    cross: list[RowFindings],
    withdrawals: Withdrawals | None = None,
) -> dict[str, Any]:
    errored = [f"{o.table}: {o.expectation}: {o.errored}" for o in outcome.checks if o.errored]
    summary: dict[str, Any] = {
        "site_id": submission.site_id,
        "night": submission.night,
        "batch_id": submission.batch_id,
        "submission_sha256": submission.content_sha256,
        "status": "passed" if outcome.passed else "issues",
        "tables": {
            table: {
                "file": s.file,
                "source_sha256": s.source_sha256,
                "rows_in": s.rows_in,
                "accepted": s.accepted,
                "quarantined": s.quarantined,
                "warnings": s.warnings,
                "rejected": s.rejected,
            }
            for table, s in outcome.tables.items()
        },
        "expectations": {
            "evaluated": len(outcome.checks),
            "unsuccessful": sum(not o.success for o in outcome.checks),
            "errored": errored,
            "crosstable_findings": sum(len(f) for f in cross),
        },
        "suites": dict(suite_sha256),
        "data_docs": "data_docs/index.html",
    }
    if withdrawals is not None:
        summary["withdrawn"] = withdrawals.summary()
    if submission.changed:
        # validated all the same (a folder planted by hand is validated as it is), and said: receive
        # refuses such a submission, so at the hub this means it did not come through receive
        summary["changed_after_packaging"] = dict(submission.changed)
    return summary
