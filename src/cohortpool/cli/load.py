"""`cohortpool load`, `cohortpool db ...` and `cohortpool export`: the hub's DuckDB warehouse."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cohortpool.cli._app import EXIT_FAILED, EXIT_ISSUES, EXIT_OK, EXIT_USAGE, App, app, read_settings

db_app = App(
    help="Warehouse administration: migrations, status, content checksum.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(db_app, name="db")

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db", help="DuckDB warehouse file (default: the `warehouse` setting, data/warehouse.duckdb)."
    ),
]
WaitOption = Annotated[
    float,
    typer.Option("--wait", min=0, help="Seconds to wait while another process holds the warehouse lock."),
]


def _db_path(db: Path | None) -> Path:
    if db is not None:
        return db
    return read_settings().warehouse


def _disk_failure(exc: BaseException) -> bool:
    """The load failed for the machine's sake (the warehouse file could not be written), not the batch's."""
    import duckdb

    return isinstance(exc.__cause__, OSError | duckdb.IOException | duckdb.TransactionException)


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@app.command("load")
def load_command(
    validated_dirs: Annotated[
        list[Path],
        typer.Argument(help="Validated batch folder(s) (output of `cohortpool validate`), loaded in order."),
    ],
    db: DbOption = None,
    wait: WaitOption = 0.0,
    test_pause_before_commit: Annotated[
        float,
        typer.Option(
            "--test-pause-before-commit",
            hidden=True,
            help="Test hook: sleep this long inside the transaction before COMMIT (kill-mid-load test).",
        ),
    ] = 0.0,
) -> None:
    """Load validated batches into the warehouse: one transaction each, idempotent, with history.

    Exit 0 when every batch loaded (or was already loaded) clean; 1 when a batch had quarantined rows or
    was refused (the warehouse is then unchanged by that batch); 2 on bad usage; 3 when the warehouse
    could not be opened or written (held by another process, a full disk).
    """
    from rich.progress import Progress

    from cohortpool.warehouse import BatchError, LoadError, WarehouseError, load_batch

    path = _db_path(db)
    for folder in validated_dirs:
        if not folder.is_dir():
            raise _fail(
                f"{folder} is not a folder (expected a validated batch from cohortpool validate)", EXIT_USAGE
            )

    def paused() -> None:
        typer.echo("test hook: paused inside the load transaction", err=True)

    exit_code = EXIT_OK
    with Progress(transient=True) as progress:
        task = progress.add_task("loading", total=len(validated_dirs))
        for folder in validated_dirs:
            try:
                result = load_batch(
                    path,
                    folder,
                    wait_seconds=wait,
                    pause_before_commit=test_pause_before_commit,
                    on_pause=paused if test_pause_before_commit > 0 else None,
                )
            except BatchError as exc:
                raise _fail(str(exc), EXIT_USAGE) from exc
            except LoadError as exc:  # refused (bad cells, a failed check), or the disk failed
                raise _fail(str(exc), EXIT_FAILED if _disk_failure(exc) else EXIT_ISSUES) from exc
            except WarehouseError as exc:  # held by another process, or missing
                raise _fail(str(exc), EXIT_FAILED) from exc
            progress.advance(task)
            rows = ", ".join(f"{table} {n}" for table, n in result.rows.items())
            typer.echo(
                f"{result.status} {result.batch_id} (load {result.load_seq}): {rows}; "
                f"quarantined {result.quarantined}, warnings {result.warnings}, "
                f"superseded {result.superseded}; {result.seconds:.2f} s"
            )
            if result.late_rows:
                typer.echo(
                    f"note: {result.late_rows} row(s) of {result.batch_id} arrived after a newer night of "
                    f"{result.site_id} and are kept for the record only (the newer night stays current)",
                    err=True,
                )
            for check, count in result.check_warnings.items():
                typer.echo(f"warning: sql/checks/{check}.sql found {count} row(s)", err=True)
            if result.quarantined:
                exit_code = EXIT_ISSUES
    raise typer.Exit(exit_code)


@db_app.command("migrate")
def migrate_command(db: DbOption = None, wait: WaitOption = 0.0) -> None:
    """Apply pending sql/schema migrations and refresh the analysis views."""
    from cohortpool.warehouse import MigrationError, WarehouseError, connect, migrate

    path = _db_path(db)
    try:
        con = connect(path, wait_seconds=wait)
    except WarehouseError as exc:
        raise _fail(str(exc), EXIT_FAILED) from exc
    try:
        applied = migrate(con)
    except MigrationError as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc
    finally:
        con.close()
    shown = ", ".join(f"{v:04d}" for v in applied) if applied else "none (up to date)"
    typer.echo(f"{path}: applied {shown}")


@db_app.command("status")
def status_command(db: DbOption = None, wait: WaitOption = 0.0) -> None:
    """Show the schema version, the loaded batches and the current rows per site."""
    from cohortpool.warehouse import WarehouseError, connect, sql

    path = _db_path(db)
    try:
        con = connect(path, read_only=True, wait_seconds=wait)
    except WarehouseError as exc:
        raise _fail(str(exc), EXIT_FAILED) from exc
    try:
        for title, name in (
            ("migrations", "load/select_schema_migrations"),
            ("batches", "load/select_batches_status"),
            ("current rows per site", "analysis/site_counts_status"),
        ):
            typer.echo(f"{title}:")
            typer.echo(sql.query_df(con, name).to_string(index=False))
    finally:
        con.close()


@db_app.command("checksum")
def checksum_command(
    db: DbOption = None,
    wait: WaitOption = 0.0,
    as_of: Annotated[
        int | None, typer.Option("--as-of", help="Checksum the views as they were right after this load_seq.")
    ] = None,
) -> None:
    """Print the content checksum of the analysis views (what a report records as provenance)."""
    from cohortpool.warehouse import WarehouseError, checksum

    try:
        typer.echo(checksum(_db_path(db), as_of_seq=as_of, wait_seconds=wait))
    except WarehouseError as exc:
        raise _fail(str(exc), EXIT_FAILED) from exc


@app.command("export")
def export_command(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the analysis sets (one subfolder per view).")],
    file_format: Annotated[str, typer.Option("--format", help="Output format (only parquet).")] = "parquet",
    db: DbOption = None,
    wait: WaitOption = 0.0,
) -> None:
    """Write the analysis views as Hive-partitioned Parquet (by site_id) for analysts and other engines."""
    from cohortpool.warehouse import WarehouseError, export_parquet

    if file_format != "parquet":
        raise _fail(f"--format {file_format!r} is not supported; use --format parquet", EXIT_USAGE)
    try:
        written = export_parquet(_db_path(db), out_dir, wait_seconds=wait)
    except WarehouseError as exc:
        raise _fail(str(exc), EXIT_FAILED) from exc
    for view, folder in written.items():
        typer.echo(f"{view}: {folder}")
