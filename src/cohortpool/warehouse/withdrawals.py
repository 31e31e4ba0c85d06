"""Withdrawal of consent in the warehouse: record the batch's withdrawals, erase the patients' rows.

A batch's ``withdrawn.csv`` (validated: ``site_id, patient_id``) lists patients who revoked consent. Their
pseudonym, site, night and the fact go to ``raw.withdrawals``; every row of theirs at that site goes,
from the loaded tables (current and history) and from the quarantine and warning lines. This runs in
every load of the site, inside the load's transaction, so no later batch brings a withdrawn patient back
(docs/data_contract.md section 4, "Withdrawal").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow.csv as pacsv

from cohortpool.warehouse import sql
from cohortpool.warehouse.batch import TABLES, ValidatedBatch
from cohortpool.warehouse.connect import connect

#: the tables a withdrawal erases rows from: loaded rows, then the quarantine and warning lines
ISSUE_TABLES: tuple[str, ...] = ("raw.quarantine", "raw.validation_warnings")


def apply_withdrawals(con: duckdb.DuckDBPyConnection, batch: ValidatedBatch) -> tuple[int, int]:
    """Record the batch's withdrawals and erase every row of the site's withdrawn patients.

    Runs after the batch's rows and bookkeeping are in, so its own rows of a withdrawn patient (a
    cumulative export, an older night arriving late) are erased like those of earlier loads and counted
    in ``raw.validation_summary.withdrawn_rows``. Returns (patients listed, rows erased).
    """
    ids: dict[str, Any] = {"batch_id": batch.batch_id, "site_id": batch.site_id}
    listed = 0
    path = batch.withdrawn_path
    if path is not None:
        sql.run_sql(con, "load/insert_withdrawals", path=str(path), night=batch.night, **ids)
        listed = int(pacsv.read_csv(path).num_rows)
    erased = 0
    site = {"site_id": batch.site_id}
    for table in TABLES:
        target = {"table": f"raw.{table}"}
        sql.run_sql(con, "load/update_summary_withdrawn_rows", identifiers=target, table_name=table, **site)
        deleted = sql.run_sql(con, "load/delete_withdrawn_rows", identifiers=target, **site).fetchone()
        erased += int(deleted[0]) if deleted else 0
    for issues in ISSUE_TABLES:
        deleted = sql.run_sql(
            con, "load/delete_withdrawn_issues", identifiers={"table": issues}, **site
        ).fetchone()
        erased += int(deleted[0]) if deleted else 0
    sql.run_sql(
        con,
        "load/update_batch_withdrawals",
        batch_id=batch.batch_id,
        withdrawn_patients=listed,
        erased_rows=erased,
    )
    return listed, erased


def withdrawn_by_site(db_path: str | Path, *, wait_seconds: float = 0.0) -> dict[str, tuple[str, ...]]:
    """Every site's withdrawn patients (pseudonyms, sorted), read from the warehouse after the loads: the
    list the hub erases from its files. Empty for a warehouse from before withdrawals (migration 0008)."""
    con = connect(db_path, read_only=True, wait_seconds=wait_seconds)
    try:
        rows = sql.query_rows(con, "load/select_withdrawals")
    except duckdb.CatalogException:
        return {}
    finally:
        con.close()
    found: dict[str, list[str]] = {}
    for site_id, patient_id in rows:
        found.setdefault(str(site_id), []).append(str(patient_id))
    return {site: tuple(patients) for site, patients in found.items()}
