"""The root Typer application; verb modules attach their commands to it.

Also what every verb shares: the exit codes of the public contract, the one way a verb reads the
settings (once, at its start) or stops with one ``error:`` line, and help that renders as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import typer
from pydantic import ValidationError
from typer.core import TyperArgument, TyperCommand, TyperGroup

from cohortpool.config import Settings, SiteConfig, config_file, describe_validation_error, load_settings

# the exit codes of the public contract (README, "Exit codes"), defined once beside the night's summary
from cohortpool.pipeline.records import EXIT_FAILED, EXIT_ISSUES, EXIT_OK, EXIT_USAGE

__all__ = [
    "EXIT_FAILED",
    "EXIT_ISSUES",
    "EXIT_OK",
    "EXIT_USAGE",
    "app",
    "declared_site",
    "fail",
    "owns_process",
    "read_settings",
]

#: a paragraph whose lines are a list or a table keeps its line breaks
_KEEP_LINES = re.compile(r"^\s*([-*]\s|\d+[.:)]\s|\s{2,}\S)")


def reflow(text: str | None) -> str | None:
    """A docstring as its author wrote it, whatever the terminal's width: each paragraph one line (Rich
    wraps it to the terminal), blank lines between paragraphs kept, lists and indented lines kept as lines.

    Typer's Rich help keeps a docstring's single line breaks (a 100-column source line wraps into a
    ragged pair on an 80-column terminal); click's plain help joins them, lists included.
    """
    if text is None:
        return None
    paragraphs = re.split(r"\n\s*\n", text.strip("\n"))
    out = []
    for paragraph in paragraphs:
        lines = [line.strip() for line in paragraph.splitlines()]
        if any(_KEEP_LINES.match(line) for line in paragraph.splitlines()[1:]):
            out.append("\n".join(lines))
        else:
            out.append(" ".join(line for line in lines if line))
    return "\n\n".join(out)


class _Usage:
    """Arguments named in upper case (``IN_DIR``) in the usage line and the Arguments panel, instead of
    Typer's lower-case Python names in braces (``{in_dir}``)."""

    def _name_arguments(self: Any) -> None:
        for param in self.params:
            if isinstance(param, TyperArgument) and param.metavar is None and param.name:
                param.metavar = param.name.upper() + ("..." if param.nargs != 1 else "")

    def collect_usage_pieces(self: Any, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                shown = param.metavar or (param.name or "").upper()
                pieces.append(shown if param.required or shown.startswith("[") else f"[{shown}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class Command(_Usage, TyperCommand):
    """A verb whose help renders as written (see :func:`reflow`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)
        self._name_arguments()


class Group(TyperGroup):
    """A verb group whose help renders as written (see :func:`reflow`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.help = reflow(self.help)


class App(typer.Typer):
    """``typer.Typer`` whose commands and groups use :class:`Command` and :class:`Group`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", Group)
        kwargs.setdefault("rich_markup_mode", "rich")
        kwargs.setdefault("context_settings", {"help_option_names": ["-h", "--help"]})
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        kwargs.setdefault("cls", Command)
        return super().command(*args, **kwargs)


app = App(
    name="cohortpool",
    help="Pool imaging cohorts across hospitals: de-identify, validate, load, analyse, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


#: set by the console script (:func:`cohortpool.cli.main`): this process is the command's alone
_OWNS_PROCESS = False


def owns_process() -> bool:
    """Whether the command runs as its own program (the console script, ``python -m cohortpool``) and may
    replace its process (``exec``), rather than inside another Python program (a test runner's
    ``CliRunner``, a notebook), which must live on."""
    return _OWNS_PROCESS


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` on stderr; raise the returned Exit to stop with ``code``."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def read_settings(**overrides: Any) -> Settings:
    """The settings of this command, read once; a bad configuration stops it with exit 2 and one line."""
    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        where = f"{config_file()} or COHORTPOOL_* environment"
        raise fail(f"invalid configuration ({where}): {describe_validation_error(exc)}") from None
    except ValueError as exc:  # ConfigFileError: already one line naming the file and line
        raise fail(f"invalid configuration: {exc}") from None


def declared_site(settings: Settings, site_id: str) -> SiteConfig:
    """The registry entry of ``site_id``; exit 2 with one line when no entry declares it."""
    try:
        return settings.site(site_id)
    except KeyError as exc:
        raise fail(str(exc)) from None
