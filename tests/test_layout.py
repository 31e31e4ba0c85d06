"""The project's shape: folders the config relies on exist, and the CLI documents itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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


# Which cohortpool packages each layer may import (STYLE.md section 2). Stage packages are siblings and
# never import each other (report may read stats); only the CLI reaches flows/, and only tasks.py and
# the CLI's run/demo/serve verbs import Prefect. Function-local imports count too.
STAGES = {"synth", "ingest", "deid", "features", "validate", "warehouse", "stats", "report"}
ALLOWED = {
    **{stage: {"config", "contract"} for stage in STAGES},
    "report": {"config", "contract", "stats"},
    "config": set(),
    "contract": set(),
    "nightly": {"config", "contract", *STAGES},
    "tasks": {"config", "contract", "nightly", *STAGES},
    "cli": {"config", "contract", "nightly", *STAGES},
}
ORCHESTRATION = {"prefect", "prefect_dask", "flows"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_imports_point_one_way() -> None:
    src = PROJECT_ROOT / "src" / "cohortpool"
    offences = []
    for path in sorted(src.rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        layer = parts[0]
        if layer in {"__init__", "__main__", "py"}:
            continue
        for name in _imports(path):
            top, _, rest = name.partition(".")
            if top == "cohortpool" and rest:
                target = rest.split(".")[0]
                if target != layer and target not in ALLOWED[layer]:
                    offences.append(f"{path.relative_to(src)} imports cohortpool.{target}")
            elif top in ORCHESTRATION and layer not in {"tasks", "cli"}:
                offences.append(f"{path.relative_to(src)} imports {top}")
    assert offences == []


def test_only_the_warehouse_reads_sql_and_only_validate_reads_expectations() -> None:
    src = PROJECT_ROOT / "src" / "cohortpool"
    for path in src.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "sql_dir" in text:
            assert path.parent.name in {"warehouse"} or path.name == "config.py", path
        if "expectations_dir" in text:
            assert path.parent.name in {"validate"} or path.name == "config.py", path


def test_every_cli_command_has_help() -> None:
    from typer.main import get_command

    from cohortpool.cli import app

    def walk(command, prefix=""):  # type: ignore[no-untyped-def]
        yield prefix + command.name, command
        for sub in getattr(command, "commands", {}).values():
            yield from walk(sub, prefix + command.name + " ")

    root = get_command(app)
    for name, command in walk(root):
        if name != root.name:
            assert (command.help or "").strip(), f"`{name}` has no help text"
