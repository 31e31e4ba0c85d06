"""The root Typer application; verb modules attach their commands to it.

Also what every verb shares: the exit codes of the public contract and the one way a verb reads the
settings (once, at its start) or stops with one ``error:`` line.
"""

from __future__ import annotations

from typing import Any

import typer

from cohortpool.config import Settings, load_settings

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


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` on stderr; raise the returned Exit to stop with ``code``."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def read_settings(**overrides: Any) -> Settings:
    """The settings of this command, read once; a bad configuration stops it with exit 2 and one line."""
    try:
        return load_settings(**overrides)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError, so is ConfigFileError
        raise fail(f"invalid configuration: {exc}") from None
