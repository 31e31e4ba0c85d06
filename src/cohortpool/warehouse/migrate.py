"""Ordered schema migrations (``sql/schema/NNNN_*.sql``) and the analysis views built on them.

``schema_migrations`` records each applied migration with the checksum of its file. An applied file
that has since been edited, or one the database knows but the checkout lacks, is an error: a schema
change is a new migration, never an edit (otherwise two warehouses with the same version would differ).
Views and macros (``sql/staging/``, ``sql/analysis/view_*.sql``) hold no data, so they are replaced on
every migrate instead of being versioned; so are the comments of ``sql/dictionary.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from cohortpool.warehouse import sql
from cohortpool.warehouse.connect import rollback
from cohortpool.warehouse.dictionary import apply_dictionary

_MIGRATION = re.compile(r"^schema/(\d{4})_[a-z0-9_]+$")

#: Views and macros in dependency order (each file may use only those before it).
ANALYSIS_OBJECTS: tuple[str, ...] = (
    "staging/stg_asof",
    "analysis/view_vertebra_reads",
    "analysis/view_patients",
    "analysis/view_vertebrae",
    "analysis/view_findings_long",
    "analysis/view_site_counts",
    "analysis/view_batches",
)


class MigrationError(RuntimeError):
    """The migrations on disk and those recorded in the warehouse disagree."""


@dataclass(frozen=True)
class Migration:
    """One ``sql/schema/NNNN_description.sql`` file."""

    version: int
    name: str
    sha256: str


def discover() -> list[Migration]:
    """The migrations of the checkout, numbered 1, 2, ... without gaps or repeats."""
    found: list[Migration] = []
    for name in sql.list_sql("schema"):
        match = _MIGRATION.match(name)
        if not match:
            raise MigrationError(f"sql/{name}.sql: migration files are named NNNN_description.sql")
        found.append(Migration(int(match.group(1)), name, sql.sql_sha256(name)))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            raise MigrationError(
                f"sql/{migration.name}.sql: expected migration number {expected:04d} "
                "(numbers run 0001, 0002, ... without gaps or repeats)"
            )
    return found


def applied(con: duckdb.DuckDBPyConnection) -> dict[int, tuple[str, str]]:
    """Recorded migrations: version -> (name, sha256); empty for a fresh file."""
    sql.run_sql(con, "load/create_schema_migrations")
    return {v: (n, s) for v, n, s in sql.query_rows(con, "load/select_schema_migrations")}


def migrate(con: duckdb.DuckDBPyConnection, *, target: int | None = None) -> list[int]:
    """Bring the warehouse up to ``target`` (default: the newest migration) and refresh the views.

    Each migration runs in its own transaction together with its ``schema_migrations`` row, so a
    failure leaves the warehouse at the previous version.

    Parameters
    ----------
    con
        A read-write connection.
    target
        Stop after this version (tests use it to build every earlier version). The views are only
        refreshed when migrating to the newest version, since they need every table.

    Returns
    -------
    list[int]
        The versions applied by this call.
    """
    migrations = discover()
    recorded = applied(con)
    on_disk = {m.version: m for m in migrations}
    for version, (name, digest) in sorted(recorded.items()):
        current = on_disk.get(version)
        if current is None:
            raise MigrationError(
                f"the warehouse has migration {version:04d} ({name}) that this checkout lacks: "
                "it was migrated by a newer cohortpool; update the checkout"
            )
        if current.sha256 != digest:
            raise MigrationError(
                f"sql/{current.name}.sql was edited after it was applied to this warehouse "
                f"(recorded sha256 {digest[:12]}, file {current.sha256[:12]}): restore the file and put "
                "the change in a new migration"
            )
    newest = migrations[-1].version if migrations else 0
    stop = newest if target is None else target
    done: list[int] = []
    for migration in migrations:
        if migration.version in recorded or migration.version > stop:
            continue
        con.begin()
        try:
            sql.run_sql(con, migration.name)
            sql.run_sql(
                con,
                "load/insert_schema_migration",
                version=migration.version,
                name=migration.name,
                sha256=migration.sha256,
                applied_at=datetime.now(UTC),
            )
            con.commit()
        except BaseException:
            rollback(con)  # a failed COMMIT (full disk) has rolled back already: keep its error
            raise
        done.append(migration.version)
    if stop == newest:
        refresh_views(con)
    return done


def refresh_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create every staging/analysis macro and view, and comment everything, all or none.

    The comments (``sql/dictionary.yaml``) are rewritten here because ``CREATE OR REPLACE VIEW`` drops
    a view's comments, and so that an edited description reaches every warehouse on its next migrate.
    """
    con.begin()
    try:
        for name in ANALYSIS_OBJECTS:
            sql.run_sql(con, name)
        apply_dictionary(con)
        con.commit()
    except BaseException:
        rollback(con)
        raise
