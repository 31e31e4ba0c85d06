"""Load one validated batch into the warehouse: all of it or none of it, once.

The whole batch (supersede, inserts, quarantine, summary, checks) runs in one DuckDB transaction.
DuckDB writes a transaction's rows to the WAL or, for large inserts, to fresh blocks of the file that
only a commit makes reachable, so a crash or kill before the commit leaves the warehouse as it was.
A batch already loaded with the same content checksum is a no-op; the same batch_id with different
content is refused (a corrected submission gets a new batch_id from its new checksum).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from cohortpool.warehouse import sql
from cohortpool.warehouse.batch import (
    ISSUE_COLUMNS,
    TABLES,
    DeidCounts,
    ValidatedBatch,
    read_batch,
    read_deid_counts,
)
from cohortpool.warehouse.catalog import describe_bad_cells, table_columns
from cohortpool.warehouse.compact import compact
from cohortpool.warehouse.connect import connect, rollback
from cohortpool.warehouse.migrate import migrate
from cohortpool.warehouse.withdrawals import apply_withdrawals


class LoadError(RuntimeError):
    """The batch could not be loaded; the warehouse is unchanged."""


class BatchConflictError(LoadError):
    """The batch_id is already loaded, from different content."""


@dataclass(frozen=True)
class LoadResult:
    """What a load did."""

    batch_id: str
    site_id: str
    #: "loaded", or "unchanged" when this content was already loaded
    status: str
    load_seq: int
    rows: dict[str, int]
    quarantined: int
    warnings: int
    superseded: int
    content_sha256: str
    seconds: float
    #: rows of this batch that arrived after a newer night of the site had replaced them: kept for the
    #: record, never current (a delayed resend of an older night does not undo a newer one)
    late_rows: int = 0
    #: findings of the sql/checks/warn_*.sql files: check name -> number of rows it returned
    check_warnings: dict[str, int] = field(default_factory=dict)
    #: earlier-night rows made current again: the re-delivered night no longer carries their patient
    reinstated_rows: int = 0
    #: patients the batch's withdrawn.csv listed (consent revoked)
    withdrawn_patients: int = 0
    #: rows this load erased for the site's withdrawn patients (history, its own rows, issue lines)
    erased_rows: int = 0
    #: every withdrawn patient of the site after this load (pseudonyms, sorted), whose values the hub
    #: erases from its files too (:mod:`cohortpool.pipeline.erasure`); also when the batch was unchanged
    withdrawn: tuple[str, ...] = ()


class _BadCells(Exception):
    """An insert hit a type, NOT NULL or value-set error; explained after the rollback."""

    def __init__(self, path: Path, table: str, cause: duckdb.Error) -> None:
        super().__init__(str(cause))
        self.path, self.table, self.cause = path, table, cause


def _read_issues(path: Path) -> pa.Table:
    # all text: quarantine values are evidence and must not be reinterpreted (e.g. "007" or "NA")
    options = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in ISSUE_COLUMNS},
        strings_can_be_null=False,
        include_columns=list(ISSUE_COLUMNS),
    )
    table = pacsv.read_csv(path, convert_options=options)
    return table.append_column("file_row", pa.array(range(1, table.num_rows + 1), type=pa.int32()))


def _insert_issues(
    con: duckdb.DuckDBPyConnection, path: Path, target: str, batch: ValidatedBatch, loaded_at: datetime
) -> int:
    issues = _read_issues(path)
    con.register("issues", issues)
    try:
        sql.run_sql(
            con,
            "load/insert_issues",
            identifiers={"table": target},
            batch_id=batch.batch_id,
            site_id=batch.site_id,
            loaded_at=loaded_at,
        )
    finally:
        con.unregister("issues")
    return int(issues.num_rows)


def _run_checks(con: duckdb.DuckDBPyConnection, values: dict[str, Any]) -> dict[str, int]:
    warnings: dict[str, int] = {}
    for name in sql.list_sql("checks"):
        check = name.split("/")[-1]
        params = {k: v for k, v in values.items() if k in sql.parameters(name)}
        rows = sql.query_rows(con, name, **params)
        if check.startswith("assert_") and rows:
            shown = "; ".join(str(r) for r in rows[:5])
            raise LoadError(
                f"batch {values['batch_id']}: check sql/{name}.sql failed ({len(rows)} row(s), "
                f"first: {shown}); nothing was loaded"
            )
        if check.startswith("warn_") and rows:
            warnings[check] = len(rows)
    return warnings


def _insert_table(
    con: duckdb.DuckDBPyConnection, batch: ValidatedBatch, table: str, params: dict[str, Any]
) -> int:
    path = batch.table_path(table)
    try:
        result = sql.run_sql(con, f"load/insert_{table}", path=str(path), **params).fetchone()
    except (duckdb.ConstraintException, duckdb.ConversionException) as exc:
        raise _BadCells(path, table, exc) from exc
    return int(result[0]) if result else 0


def _site_withdrawals(con: duckdb.DuckDBPyConnection, site_id: str) -> tuple[str, ...]:
    return tuple(str(r[0]) for r in sql.query_rows(con, "load/select_site_withdrawals", site_id=site_id))


def _unchanged(
    batch: ValidatedBatch, row: tuple[Any, ...], started: float, withdrawn: tuple[str, ...]
) -> LoadResult:
    _, load_seq, _, n_clin, n_reads, n_man, n_quar, n_warn, n_sup, n_late = row
    return LoadResult(
        batch_id=batch.batch_id,
        site_id=batch.site_id,
        status="unchanged",
        load_seq=load_seq,
        rows={"clinical": n_clin, "reads": n_reads, "imaging_manifest": n_man},
        quarantined=n_quar,
        warnings=n_warn,
        superseded=n_sup,
        content_sha256=batch.content_sha256,
        seconds=time.perf_counter() - started,
        late_rows=n_late or 0,
        withdrawn=withdrawn,
    )


def _already_loaded(con: duckdb.DuckDBPyConnection, batch: ValidatedBatch) -> tuple[Any, ...] | None:
    """The batch's row of raw.batches when this content is loaded; refuses the same id with other content."""
    existing = sql.query_rows(con, "load/select_batch", batch_id=batch.batch_id)
    if not existing:
        return None
    if existing[0][2] == batch.content_sha256:
        return existing[0]
    raise BatchConflictError(
        f"batch {batch.batch_id} is already loaded from different content (sha256 "
        f"{existing[0][2][:12]}, now {batch.content_sha256[:12]}): the same submission was validated "
        "differently. A corrected submission gets a new batch_id; to replace this one, restore the "
        "warehouse from its backup and load the corrected batch"
    )


@dataclass(frozen=True)
class _TableCounts:
    """What loading the data tables did: rows inserted per table, earlier rows replaced, late rows."""

    rows: dict[str, int]
    superseded: int
    late: int
    reinstated: int = 0


def _load_tables(
    con: duckdb.DuckDBPyConnection, batch: ValidatedBatch, load_seq: int, loaded_at: datetime
) -> _TableCounts:
    """Per table: close the rows this batch replaces, insert its rows, give back the earlier-night rows a
    re-delivery no longer replaces, close its own late rows."""
    ids: dict[str, Any] = {"batch_id": batch.batch_id, "site_id": batch.site_id}
    superseded = late = reinstated = 0
    rows: dict[str, int] = {}
    for table in TABLES:
        target = {"table": f"raw.{table}"}
        replaced = sql.run_sql(
            con,
            "load/supersede_rows",
            identifiers=target,
            path=str(batch.table_path(table)),
            load_seq=load_seq,
            night=batch.night,
            **ids,
        ).fetchone()
        superseded += int(replaced[0]) if replaced else 0
        rows[table] = _insert_table(con, batch, table, {"loaded_at": loaded_at, "load_seq": load_seq})
        back = sql.run_sql(
            con, "load/reinstate_rows", identifiers=target, load_seq=load_seq, night=batch.night, **ids
        ).fetchone()
        reinstated += int(back[0]) if back else 0
        closed = sql.run_sql(
            con, "load/close_late_rows", identifiers=target, load_seq=load_seq, night=batch.night, **ids
        ).fetchone()
        late += int(closed[0]) if closed else 0
    return _TableCounts(rows, superseded, late, reinstated)


def _record_batch(
    con: duckdb.DuckDBPyConnection,
    batch: ValidatedBatch,
    load_seq: int,
    loaded_at: datetime,
    tables: _TableCounts,
    issues: tuple[int, int],
    deid: DeidCounts,
) -> None:
    """The batch's bookkeeping rows: its site, validation summary, file checksums and raw.batches row."""
    ids: dict[str, Any] = {"batch_id": batch.batch_id, "site_id": batch.site_id}
    quarantined, warnings = issues
    sql.run_sql(con, "load/insert_site", loaded_at=loaded_at, **ids)
    for table, counts in batch.counts.items():
        sql.run_sql(con, "load/insert_validation_summary", table_name=table, **counts, **ids)
    for file in batch.files:
        sql.run_sql(
            con,
            "load/insert_batch_file",
            batch_id=batch.batch_id,
            file=file.relpath,
            sha256=file.sha256,
            bytes=file.size,
        )
    sql.run_sql(
        con,
        "load/insert_batch",
        load_seq=load_seq,
        night=batch.night,
        content_sha256=batch.content_sha256,
        validated_dir=str(batch.path),
        received_at=batch.received_at,
        loaded_at=loaded_at,
        validation_outcome="quarantined" if quarantined else "passed",
        clinical_rows=tables.rows["clinical"],
        reads_rows=tables.rows["reads"],
        imaging_manifest_rows=tables.rows["imaging_manifest"],
        quarantined_rows=quarantined,
        warning_rows=warnings,
        superseded_rows=tables.superseded,
        late_rows=tables.late,
        reinstated_rows=tables.reinstated,
        summary_json=batch.summary_text,
        submission_sha256=batch.submission_sha256,
        validation_status=batch.validation_status,
        deid_input_files=deid.input_files,
        deid_deidentified=deid.deidentified,
        deid_quarantined=deid.quarantined,
        deid_duplicates=deid.duplicates,
        release_k_anonymity=deid.k_anonymity,
        release_generalisations=deid.generalisations,
        **ids,
    )


def _load(
    con: duckdb.DuckDBPyConnection, batch: ValidatedBatch, deid: DeidCounts, started: float
) -> LoadResult:
    """Every statement of one batch's load, inside the caller's open transaction."""
    existing = _already_loaded(con, batch)
    if existing is not None:
        return _unchanged(batch, existing, started, _site_withdrawals(con, batch.site_id))
    load_seq = int(sql.query_rows(con, "load/select_next_load_seq")[0][0])
    loaded_at = datetime.now(UTC)
    tables = _load_tables(con, batch, load_seq, loaded_at)
    quarantined = _insert_issues(con, batch.quarantine_path, "raw.quarantine", batch, loaded_at)
    warnings_path = batch.warnings_path
    warnings = 0
    if warnings_path is not None:
        warnings = _insert_issues(con, warnings_path, "raw.validation_warnings", batch, loaded_at)
    _record_batch(con, batch, load_seq, loaded_at, tables, (quarantined, warnings), deid)
    withdrawn, erased = apply_withdrawals(con, batch)
    check_warnings = _run_checks(
        con, {"load_seq": load_seq, "batch_id": batch.batch_id, "site_id": batch.site_id}
    )
    return LoadResult(
        batch_id=batch.batch_id,
        site_id=batch.site_id,
        status="loaded",
        load_seq=load_seq,
        rows=tables.rows,
        quarantined=quarantined,
        warnings=warnings,
        superseded=tables.superseded,
        content_sha256=batch.content_sha256,
        seconds=time.perf_counter() - started,
        check_warnings=check_warnings,
        late_rows=tables.late,
        reinstated_rows=tables.reinstated,
        withdrawn_patients=withdrawn,
        erased_rows=erased,
        withdrawn=_site_withdrawals(con, batch.site_id),
    )


def load_batch(
    db_path: str | Path,
    validated_dir: str | Path,
    *,
    wait_seconds: float = 0.0,
    submission_dir: str | Path | None = None,
) -> LoadResult:
    """Load the validated batch in ``validated_dir`` into the warehouse at ``db_path``.

    Migrates the warehouse first. One transaction: on any error the batch is rolled back and the
    error (:class:`LoadError`, also for a warehouse file that cannot be written, e.g. a full disk;
    :class:`~cohortpool.warehouse.batch.BatchError`; or the lock error of
    :func:`~cohortpool.warehouse.connect.connect`) names the file and what to do.

    Parameters
    ----------
    db_path
        The DuckDB warehouse file (created if missing).
    validated_dir
        Output folder of ``cohortpool validate`` for one site-night.
    wait_seconds
        How long to wait for another writer to release the warehouse.
    submission_dir
        The submission the batch was validated from (``submission.json`` beside it): its
        de-identification counts (files in, de-identified, quarantined at the site, duplicates) are
        recorded on the batch for the report's data-quality section. Without it they stay NULL.
    """
    started = time.perf_counter()
    con = connect(db_path, wait_seconds=wait_seconds)
    loading = str(validated_dir)
    try:
        migrate(con)
        batch = read_batch(validated_dir, table_columns(con))
        deid = read_deid_counts(submission_dir, batch) if submission_dir is not None else DeidCounts()
        loading = f"batch {batch.batch_id} ({validated_dir})"
        con.begin()
        try:
            result = _load(con, batch, deid, started)
            if result.status == "loaded":
                con.commit()
                if result.erased_rows:
                    sql.run_sql(con, "load/checkpoint")  # nothing left in the WAL before the rewrite
            else:
                con.rollback()
        except _BadCells as bad:
            rollback(con)
            # the failed transaction cannot run queries; find the offending cells after the rollback
            # values are left out of the message: they may be quasi-identifiers
            raise LoadError(
                f"{bad.path}: {describe_bad_cells(con, bad.path, bad.table)}. The batch breaks the column "
                "types or value sets of docs/data_contract.md; nothing was loaded (re-run cohortpool "
                f"validate). ({type(bad.cause).__name__})"
            ) from bad.cause
        except BaseException:
            rollback(con)  # a failed COMMIT (full disk) has rolled back already: keep its error
            raise
    except (duckdb.IOException, duckdb.TransactionException) as exc:
        # the file could not be written (a full disk: DuckDB's I/O error, or "Failed to commit")
        raise LoadError(
            f"{loading}: the warehouse {db_path} could not be updated ({exc}); nothing was loaded (the "
            "transaction was rolled back, the warehouse is as it was): free space on its disk or fix the "
            "cause, and run cohortpool load again"
        ) from exc
    finally:
        con.close()
    if result.status == "loaded" and result.erased_rows:
        _rewrite_after_erasure(Path(db_path), result, wait_seconds)
    return result


def _rewrite_after_erasure(db_path: Path, result: LoadResult, wait_seconds: float) -> None:
    """Erased rows leave no bytes in the file (:mod:`cohortpool.warehouse.compact`)."""
    try:
        compact(db_path, wait_seconds=max(wait_seconds, 60.0))
    except (OSError, duckdb.Error) as exc:
        raise LoadError(
            f"batch {result.batch_id} is loaded and its withdrawals applied (no query shows the erased "
            f"rows), but rewriting {db_path} without their bytes failed ({exc}); the old file is in place "
            "and may still hold those bytes: free space on its disk, restore the warehouse from its backup "
            "and load the batches again"
        ) from exc
