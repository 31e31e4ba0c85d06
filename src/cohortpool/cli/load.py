"""`cohortpool load`, `cohortpool db ...` and `cohortpool export`: the hub's DuckDB warehouse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cohortpool.cli._app import EXIT_FAILED, EXIT_ISSUES, EXIT_OK, EXIT_USAGE, App, app, read_settings

db_app = App(
    help="Warehouse administration: migrations, publishing, status, checksum, data dictionary.",
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


def _hub_out(validated: Path) -> Path | None:
    """The hub's output folder when ``validated`` lies where the hub keeps batches
    (``OUT/validated/<site>/<night>``): its stores are erased of the site's withdrawn patients after the
    load, as the hub and nightly runs do; a batch kept elsewhere has no hub stores beside it."""
    folder = validated.resolve()
    return folder.parents[2] if len(folder.parents) > 2 and folder.parent.parent.name == "validated" else None


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


SubmissionOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--submission",
        help="Submission folder a batch was validated from (repeatable; matched by site and night): its "
        "de-identification counts are recorded for the report's data-quality section.",
    ),
]
PublishOption = Annotated[
    bool,
    typer.Option(
        "--publish/--no-publish",
        help="After loading, publish the read-only copy analysts and reports read (default: publish).",
    ),
]
#: publishing after a load queues behind another writer rather than fail: the loads are in already
PUBLISH_WAIT_SECONDS = 600.0


def _site_night(path: Path) -> tuple[str, str] | None:
    """(site_id, night) named by a summary.json or submission.json, None if unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    return str(data.get("site_id")), str(data.get("night"))


def _submissions_by_night(folders: list[Path], batches: list[Path]) -> dict[Path, Path]:
    """Each validated batch folder -> the --submission folder of the same site and night."""
    by_night: dict[tuple[str, str], Path] = {}
    for folder in folders:
        key = _site_night(folder / "submission.json")
        if key is None:
            raise _fail(
                f"{folder}: no readable submission.json (pass a folder cohortpool deid wrote)", EXIT_USAGE
            )
        by_night[key] = folder
    matched: dict[Path, Path] = {}
    for batch in batches:
        key = _site_night(batch / "summary.json")
        if key is not None and key in by_night:
            matched[batch] = by_night.pop(key)
    if by_night:
        unmatched = ", ".join(f"{p} ({s} {n})" for (s, n), p in sorted(by_night.items()))
        raise _fail(f"--submission {unmatched}: no validated batch of that site and night given", EXIT_USAGE)
    return matched


def _publish(path: Path, wait: float) -> None:
    from cohortpool.warehouse import PublishError, WarehouseError, publish

    try:
        done = publish(path, wait_seconds=max(wait, PUBLISH_WAIT_SECONDS))
    except (PublishError, WarehouseError) as exc:
        # no warehouse to publish is a wrong --db (usage); one that cannot be copied is a failed stage
        raise _fail(str(exc), EXIT_FAILED if path.exists() else EXIT_USAGE) from exc
    typer.echo(
        f"published {done.path} (load {done.load_seq}, {done.bytes / 2**20:.1f} MiB, "
        f"{done.seconds:.2f} s); data dictionary {done.dictionary}"
    )


@app.command("load")
def load_command(
    validated_dirs: Annotated[
        list[Path],
        typer.Argument(help="Validated batch folder(s) (output of `cohortpool validate`), loaded in order."),
    ],
    db: DbOption = None,
    wait: WaitOption = 0.0,
    submission: SubmissionOption = None,
    publish: PublishOption = True,
) -> None:
    """Load validated batches into the warehouse: one transaction each, idempotent, with history.

    Then publish the read-only copy (published/warehouse.duckdb beside the warehouse) that analysts and
    reports read, unless --no-publish. Exit 0 when every batch loaded (or was already loaded) clean; 1
    when a batch had quarantined rows or was refused (the warehouse is then unchanged by that batch; the
    batches before it are loaded and published); 2 on bad usage; 3 when the warehouse could not be opened
    or written (held by another process, a full disk).
    """
    from rich.progress import Progress

    from cohortpool.pipeline.erasure import ErasureError, erase_withdrawn
    from cohortpool.warehouse import BatchError, LoadError, WarehouseError, load_batch, published_path

    path = _db_path(db)
    for folder in validated_dirs:
        if not folder.is_dir():
            raise _fail(
                f"{folder} is not a folder (expected a validated batch from cohortpool validate)", EXIT_USAGE
            )
    submissions = _submissions_by_night(submission or [], validated_dirs)

    exit_code = EXIT_OK
    loaded = 0
    failure: typer.Exit | None = None
    with Progress(transient=True) as progress:
        task = progress.add_task("loading", total=len(validated_dirs))
        for folder in validated_dirs:
            try:
                result = load_batch(path, folder, wait_seconds=wait, submission_dir=submissions.get(folder))
            except BatchError as exc:
                failure = _fail(str(exc), EXIT_USAGE)
                break
            except LoadError as exc:  # refused (bad cells, a failed check), or the disk failed
                failure = _fail(str(exc), EXIT_FAILED if _disk_failure(exc) else EXIT_ISSUES)
                break
            except WarehouseError as exc:  # held by another process, or missing
                failure = _fail(str(exc), EXIT_FAILED)
                break
            progress.advance(task)
            loaded += result.status == "loaded"
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
            if result.reinstated_rows:
                typer.echo(
                    f"note: {result.batch_id} re-delivers its night without patients an earlier delivery "
                    f"carried: {result.reinstated_rows} row(s) of earlier nights are current again",
                    err=True,
                )
            if result.withdrawn_patients:
                typer.echo(
                    f"note: {result.batch_id} withdrew {result.withdrawn_patients} patient(s) of "
                    f"{result.site_id}; {result.erased_rows} row(s) of theirs erased, history included "
                    "(raw.withdrawals keeps pseudonym, night and the fact)",
                    err=True,
                )
            out = _hub_out(folder)
            if out is not None and result.withdrawn:
                try:
                    erased = erase_withdrawn(out, result.site_id, result.withdrawn)
                except ErasureError as exc:
                    failure = _fail(str(exc), EXIT_FAILED)
                    break
                if erased.files:
                    typer.echo(
                        f"note: {erased.files_rewritten} file(s) rewritten and {erased.files_removed} "
                        f"removed under {out} to erase {result.site_id}'s withdrawn patients (see "
                        "erasure.json in each folder)",
                        err=True,
                    )
            for check, count in result.check_warnings.items():
                typer.echo(f"warning: sql/checks/{check}.sql found {count} row(s)", err=True)
            if result.quarantined:
                exit_code = EXIT_ISSUES
    # publish what this command loaded (also when a later batch failed), or a copy that was never made
    if publish and (loaded or (failure is None and not published_path(path).exists())):
        _publish(path, wait)
    if failure is not None:
        raise failure
    raise typer.Exit(exit_code)


@db_app.command("publish")
def publish_command(db: DbOption = None, wait: WaitOption = 0.0) -> None:
    """Publish the read-only copy of the warehouse (published/warehouse.duckdb beside it) and its data
    dictionary page: what analysts, BI tools and `cohortpool report` open. `cohortpool load` does this
    after every load; run it by hand after `db migrate` or to refresh a deleted copy."""
    _publish(_db_path(db), wait)


@db_app.command("dictionary")
def dictionary_command(
    db: Annotated[
        Path | None,
        typer.Option("--db", help="Describe this warehouse (default: the schema this checkout migrates to)."),
    ] = None,
    html: Annotated[Path | None, typer.Option("--html", help="Write the data dictionary page here.")] = None,
    contract: Annotated[
        Path | None,
        typer.Option(
            "--contract", help="Rewrite the generated block of this data contract (docs/data_contract.md)."
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="With --contract: only check it is current (exit 1 if stale).")
    ] = False,
) -> None:
    """The data dictionary (sql/dictionary.yaml as the warehouse's comments): as an HTML page, as the
    data contract's generated block, or printed as Markdown."""
    import duckdb

    from cohortpool.warehouse import WarehouseError, migrate, open_reader
    from cohortpool.warehouse.dictionary import (
        DictionaryError,
        contract_block,
        describe,
        render_html,
        to_markdown,
        update_contract,
    )

    try:
        con = open_reader(db) if db is not None else duckdb.connect()
    except WarehouseError as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc
    try:
        if db is None:
            migrate(con)
        found = describe(con)
    finally:
        con.close()
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(render_html(found), encoding="utf-8")
        typer.echo(f"data dictionary: {html}")
    if contract is not None:
        try:
            if check:
                if contract_block(contract) != to_markdown(found):
                    raise _fail(
                        f"{contract}: the generated data dictionary is stale; run `cohortpool db dictionary "
                        f"--contract {contract}`",
                        EXIT_ISSUES,
                    )
                typer.echo(f"{contract}: up to date")
            else:
                changed = update_contract(contract, found)
                typer.echo(f"{contract}: {'updated' if changed else 'up to date'}")
        except (DictionaryError, OSError) as exc:
            raise _fail(str(exc), EXIT_USAGE) from exc
    if html is None and contract is None:
        typer.echo(to_markdown(found))


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
