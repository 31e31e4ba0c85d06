"""The project's shape: folders the config relies on exist, and the CLI documents itself."""

from __future__ import annotations

import subprocess
import sys

from cohortpool.config import PROJECT_ROOT, load_settings


def test_config_resolves_sql_and_expectations_from_project_root() -> None:
    settings = load_settings()
    assert settings.sql_dir == PROJECT_ROOT / "sql"
    assert settings.sql_dir.is_dir()
    assert settings.expectations_dir.is_dir()


def test_cli_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cohortpool", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "Usage" in out
    assert "version" in out


def test_unknown_site_names_the_configured_ones() -> None:
    settings = load_settings()
    try:
        settings.site("nowhere")
    except KeyError as exc:
        assert "site01" in str(exc)
    else:
        raise AssertionError("unknown site accepted")
