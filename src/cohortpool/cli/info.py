"""`cohortpool version` and `cohortpool config`: what is installed and how it is configured."""

from __future__ import annotations

import json

import typer

from cohortpool import __version__
from cohortpool.cli._app import app, read_settings


@app.command()
def version() -> None:
    """Print the cohortpool version."""
    typer.echo(__version__)


@app.command("config")
def show_config() -> None:
    """Print the effective configuration (the secret is never shown)."""
    settings = read_settings()
    shown = settings.model_dump(mode="json", exclude={"secret"})
    shown["secret"] = "set" if settings.secret is not None else "not set"
    typer.echo(json.dumps(shown, indent=2, sort_keys=True))
