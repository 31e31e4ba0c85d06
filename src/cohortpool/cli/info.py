"""`cohortpool version`, `cohortpool config [check]` and `cohortpool keygen`: what is installed, how it
is configured, and a key to configure it with."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Annotated

import typer

from cohortpool import __version__
from cohortpool.cli._app import App, app, fail, read_settings
from cohortpool.config import MissingSecretError, Settings, config_file, read_secret_file
from cohortpool.contract.keys import key_fingerprint

config_app = App(
    help="Print the effective configuration, or check a configuration file (`cohortpool config check`).",
    invoke_without_command=True,
    no_args_is_help=False,
)
app.add_typer(config_app, name="config")


@app.command()
def version() -> None:
    """Print the cohortpool version and the edition of the de-identification profile it applies."""
    from cohortpool.deid.profile import EDITION

    typer.echo(f"cohortpool {__version__}")
    typer.echo(f"de-identification profile: {EDITION}")


def _key(settings: Settings) -> tuple[str, str | None, str | None]:
    """Where the secret comes from, its fingerprint, and why it is refused (None when usable)."""
    if settings.secret is not None:
        source = "COHORTPOOL_SECRET"
    elif settings.secret_file is not None:
        source = f"secret_file {settings.secret_file}"
    else:
        return "not set", None, None
    try:
        return source, key_fingerprint(settings.secret_bytes()), None
    except MissingSecretError as exc:
        return source, None, str(exc)


@config_app.callback()
def show_config(ctx: typer.Context) -> None:
    """Print the effective configuration and the consortium key's fingerprint (never the key).

    The fingerprint is a keyed hash of a fixed label: it tells two keys apart and reveals nothing of the
    key. Compare it with the other sites', or pin it in a site's registry entry (key_fingerprint).
    Exit 2 when the configuration or the key is refused.
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = read_settings()
    source, fingerprint, refused = _key(settings)
    shown = settings.model_dump(mode="json", exclude={"secret"})
    shown["secret"] = source if refused is None else f"{source}: refused"
    shown["key_fingerprint"] = fingerprint
    shown["config_file"] = str(config_file())
    typer.echo(json.dumps(shown, indent=2, sort_keys=True))
    if refused is not None:
        raise fail(refused)


@config_app.command("check")
def check_config(
    file: Annotated[
        Path | None,
        typer.Argument(help="The configuration file (default: COHORTPOOL_CONFIG or ./cohortpool.yaml)."),
    ] = None,
) -> None:
    """Check a configuration file without running anything: keys, values, sites, and the key if one is set.

    Exit 0 when it is usable; 2 with one line naming the file, the line and the problem otherwise.
    """
    path = file if file is not None else config_file()
    if not path.is_file():
        raise fail(f"{path}: no such file")
    os.environ["COHORTPOOL_CONFIG"] = str(path)  # this process only: the one file read_settings reads
    settings = read_settings()
    source, fingerprint, refused = _key(settings)
    if refused is not None:
        raise fail(refused)
    for site in settings.sites:
        if fingerprint and site.key_fingerprint and site.key_fingerprint != fingerprint:
            raise fail(
                f"{path}: site {site.site_id} pins key fingerprint {site.key_fingerprint}, but the key "
                f"configured here ({source}) has fingerprint {fingerprint}"
            )
    sites = ", ".join(s.site_id for s in settings.sites) or "none (no site can be processed)"
    typer.echo(f"{path}: valid; sites: {sites}")
    typer.echo(f"consortium key: {source}" + (f", fingerprint {fingerprint}" if fingerprint else ""))


@app.command()
def keygen(
    file: Annotated[Path, typer.Argument(help="Where to write the key (must not exist).")],
) -> None:
    """Write a new random consortium key (64 hex characters: 256 bits) to FILE, readable by you only.

    The key is made once, by the consortium's key custodian, and the same file goes to every site over a
    secure channel; each site points `secret_file` in cohortpool.yaml at it. An existing file is never
    overwritten: pseudonyms made with a lost key cannot be linked to new ones.
    """
    key = secrets.token_hex(32)
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise fail(f"{file} exists: a key is never overwritten; choose another file name") from None
    except OSError as exc:
        raise fail(f"cannot create {file}: {exc.strerror or type(exc).__name__}") from None
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), 0o600)  # whatever the umask
        handle.write(key + "\n")
    fingerprint = key_fingerprint(read_secret_file(file))
    typer.echo(f"wrote a new consortium key to {file} (mode 0600); its fingerprint is {fingerprint}")
    typer.echo(f"set `secret_file: {file.resolve()}` in cohortpool.yaml and give the same file to every site")
