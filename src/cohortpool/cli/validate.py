"""`cohortpool validate SUBMISSION_DIR [--out DIR]`: check a submission against the reviewed suites."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from cohortpool.cli._app import EXIT_FAILED, EXIT_USAGE, app, fail, owns_process, read_settings
from cohortpool.contract import MACHINE_ERRNOS

if TYPE_CHECKING:
    from cohortpool.validate.outcome import ValidationOutcome

#: the hidden command a `validate` that owns its process becomes, to finish the batch it staged
FINISH_COMMAND = "_finish-validate"


@app.command("validate")
def validate(
    submission_dir: Annotated[
        Path, typer.Argument(help="A submission folder (output of `cohortpool deid`).", show_default=False)
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Where to write the validated batch (default: <data_dir>/validated/<site_id>/<night>).",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="duckdb: SQL generated from the suites, GX for what has no exact translation; gx: Great "
            "Expectations on pandas for everything (slower; the reference the SQL is tested against).",
        ),
    ] = "duckdb",
) -> None:
    """Validate a submission: accepted rows, quarantine.csv, warnings.csv, summary.json, Data Docs.

    Once the batch is staged, the command continues as `cohortpool _finish-validate` in the same process
    (same process id; the Data Docs are rendered without the validation's memory) and puts the batch in
    place.

    Exit code 0 when every row passed, 1 when rows were quarantined or a table was rejected (warnings
    alone do not fail), 2 when the folder is not a submission or the configuration is bad, 3 when the
    batch could not be written (a full disk, or memory ran out: nothing was marked validated).
    """
    from rich.console import Console

    from cohortpool.validate import Validator
    from cohortpool.validate.handover import hand_over
    from cohortpool.validate.run import ENGINES
    from cohortpool.validate.submission import open_submission

    console = Console(stderr=True)
    if engine not in ENGINES:
        typer.echo(f"error: --engine must be one of {', '.join(ENGINES)}, not {engine!r}", err=True)
        raise typer.Exit(EXIT_USAGE)
    with _batch_errors(lambda: out):  # read when an error is reported: `out` may be set below
        if out is None:
            submission = open_submission(submission_dir)
            out = read_settings().data_dir / "validated" / submission.site_id / submission.night
        with console.status(f"validating {submission_dir} ..."):
            validator = Validator(engine=engine)
            staged = validator.stage_submission(submission_dir, out)
        if owns_process():
            # the Data Docs in a fresh process (cohortpool.validate.handover): returns only where this
            # process cannot be replaced
            hand_over(staged, *_this_program(FINISH_COMMAND))
        outcome = staged.finish(validator.pages)
    _report(outcome)


@app.command(FINISH_COMMAND, hidden=True)
def finish_validate(
    descriptor: Annotated[int, typer.Argument(help="The handed-over batch's file descriptor.")],
) -> None:
    """Finish a batch `cohortpool validate` staged (its Data Docs, then the batch put in place), in the
    process that command replaced itself with (:mod:`cohortpool.validate.handover`)."""
    import pickle

    from cohortpool.validate.handover import take_over

    try:
        staged = take_over(descriptor)
    except (OSError, EOFError, pickle.UnpicklingError, TypeError) as exc:
        raise fail(
            f"descriptor {descriptor} holds no staged batch ({exc}): this command is started by "
            "`cohortpool validate` only; run that"
        ) from None
    with _batch_errors(lambda: staged.outcome.out_dir):
        outcome = staged.finish()
    _report(outcome)


def _this_program(command: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run ``cohortpool <command>`` from the very package this
    process runs. ``-P`` keeps the working folder off the module path (a folder named ``cohortpool``
    there would be imported instead). A package that is not installed (a source checkout) has its folder
    put first on ``PYTHONPATH``; an installed one is found where it was, and its site-packages folder is
    not put ahead of the standard library."""
    import site

    import cohortpool

    root = Path(cohortpool.__file__).resolve().parents[1]
    installed = {Path(p).resolve() for p in [*site.getsitepackages(), site.getusersitepackages()]}
    env = dict(os.environ)
    if root not in installed:
        path = [str(root), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(path)
    return [sys.executable, "-P", "-m", "cohortpool", command], env


@contextmanager
def _batch_errors(out: Callable[[], Path | None]) -> Iterator[None]:
    """The errors of a validation as one line and the exit code the contract gives them."""
    from cohortpool.validate import SubmissionError

    try:
        yield
    except SubmissionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    except MemoryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except OSError as exc:
        if exc.errno not in MACHINE_ERRNOS:
            raise
        from cohortpool.pipeline.site import free_space

        where = out() or Path()
        typer.echo(
            f"error: {exc.strerror}: the validated batch could not be written to {where} "
            f"({free_space(where)}); nothing was marked validated: free space and run again",
            err=True,
        )
        raise typer.Exit(EXIT_FAILED) from None


def _report(outcome: ValidationOutcome) -> NoReturn:
    """What the validation did, one line per table, and its exit code."""
    for file, problem in outcome.changed.items():
        # the submission did not come through `cohortpool receive`, which refuses it: validated as it is
        typer.echo(
            f"warning: {file} {problem}: the submission changed after {outcome.site_id} packaged it "
            "(`cohortpool receive` refuses such a submission; ask the site to push the night again)",
            err=True,
        )
    for table, summary in outcome.tables.items():
        line = (
            f"{table}: {summary.rows_in} in, {summary.accepted} accepted, "
            f"{summary.quarantined} quarantined, {summary.warnings} with warnings"
        )
        if summary.rejected:
            line += f"; REJECTED: {summary.rejected}"
        typer.echo(line)
    if outcome.withdrawn is not None:
        passed, refused = outcome.withdrawn
        typer.echo(f"withdrawn: {passed} patient(s) passed to the batch, {refused} row(s) quarantined")
    for check in outcome.checks:
        if check.errored:
            typer.echo(f"error: {check.table}: {check.expectation} could not run: {check.errored}", err=True)
    typer.echo(f"batch {outcome.batch_id} written to {outcome.out_dir} (Data Docs: {outcome.data_docs})")
    raise typer.Exit(outcome.exit_code)
