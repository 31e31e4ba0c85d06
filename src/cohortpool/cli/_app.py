"""The root Typer application; verb modules attach their commands to it."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="cohortpool",
    help="Pool imaging cohorts across hospitals: de-identify, validate, load, analyse, report.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)

#: exit codes of the public contract (ARCHITECTURE.md)
EXIT_OK = 0
EXIT_ISSUES = 1  # finished, but something was quarantined or failed validation
EXIT_USAGE = 2  # bad usage or bad configuration
