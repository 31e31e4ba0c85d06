"""The project's shape: folders the config relies on exist, and the CLI documents itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from cohortpool.config import load_settings
from cohortpool.contract import resources

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "cohortpool"


def test_the_package_finds_its_sql_suites_and_plans_wherever_it_runs_from() -> None:
    assert (resources.sql_dir() / "schema" / "0001_schemas.sql").is_file()
    assert (resources.suites_dir() / "clinical.json").is_file()
    assert resources.plan_path().is_file()
    # found through the installed package, and the checkout's top-level folders are their source
    for kind in ("sql", "expectations", "plans"):
        assert resources.shipped_dir(kind).resolve() == (ROOT / kind).resolve()


def test_unknown_site_names_the_configured_ones() -> None:
    settings = load_settings()
    try:
        settings.site("nowhere")
    except KeyError as exc:
        assert "site01" in str(exc)
    else:
        raise AssertionError("unknown site accepted")


def test_cli_help_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "cohortpool", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "Usage" in out
    assert "version" in out


# The layers (README "Layout"): flows -> tasks -> pipeline -> stages -> contract. Stage packages are
# siblings and never import each other (report may read stats); only the composition layer chains
# stages; a CLI verb calls one stage or the pipeline; config and contract import no stage. Function-local
# and TYPE_CHECKING imports count too.
STAGES = {"synth", "ingest", "deid", "features", "transport", "validate", "warehouse", "stats", "report"}
ALLOWED = {
    **{stage: {"config", "contract"} for stage in STAGES},
    "report": {"config", "contract", "stats"},
    "config": {"contract"},
    "contract": set(),
    "pipeline": {"config", "contract", *STAGES},
    "tasks": {"contract", "pipeline"},
    "cli": {"config", "contract", "pipeline", *STAGES},
}
#: what flows/ may import of cohortpool: the tasks and the composition layer's records, never a stage
FLOWS_ALLOWED = {"tasks", "pipeline"}
#: only these import Prefect (the CLI's run/demo/serve verbs hand over to flows/)
ORCHESTRATION = {"prefect", "prefect_dask", "flows"}
#: ... and `cohortpool receive`, which announces admitted submissions with a Prefect event (the transport
#: stage may not import Prefect, so the emit sits in the verb)
#: and `cohortpool deploy`, which registers the generated work pools and deployments with Prefect's client
PREFECT_USERS = {"tasks", "cli/run", "cli/receive", "cli/deploy"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _layer(path: Path) -> tuple[str, str]:
    parts = path.relative_to(SRC).with_suffix("").parts
    return parts[0], "/".join(parts)


def test_imports_point_one_way() -> None:
    offences = []
    for path in sorted(SRC.rglob("*.py")):
        layer, module = _layer(path)
        if layer in {"__init__", "__main__", "py"}:
            continue
        for name in _imports(path):
            top, _, rest = name.partition(".")
            if top == "cohortpool" and rest:
                target = rest.split(".")[0]
                if target != layer and target not in ALLOWED[layer]:
                    offences.append(f"{module} imports cohortpool.{target}")
            elif top in ORCHESTRATION and module not in PREFECT_USERS:
                offences.append(f"{module} imports {top}")
    assert offences == []


def test_only_the_composition_layer_chains_stages() -> None:
    offences = []
    for path in sorted((SRC / "cli").glob("*.py")):
        stages = {
            name.split(".")[1]
            for name in _imports(path)
            if name.startswith("cohortpool.") and name.split(".")[1] in STAGES
        }
        if len(stages) > 1:
            offences.append(f"cli/{path.name} reaches {sorted(stages)}: compose them in cohortpool.pipeline")
    for path in sorted((ROOT / "flows").glob("*.py")):
        for name in _imports(path):
            top, _, rest = name.partition(".")
            if top == "cohortpool" and rest.split(".")[0] not in FLOWS_ALLOWED:
                offences.append(f"flows/{path.name} imports {name}: flows call tasks, tasks the pipeline")
    assert offences == []


def test_settings_are_read_once_per_run_at_its_entry_points() -> None:
    """Only the CLI's one reader and the deployment-run entry of the pipeline call load_settings."""
    readers = []
    for path in [*sorted(SRC.rglob("*.py")), *sorted((ROOT / "flows").glob("*.py"))]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_settings":
                readers.append(path.relative_to(ROOT).as_posix())
    assert sorted(set(readers)) == ["src/cohortpool/cli/_app.py", "src/cohortpool/pipeline/runconfig.py"]


def test_only_the_warehouse_reads_sql_and_only_validate_reads_expectations() -> None:
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "sql_dir" in text:
            assert path.parent.name in {"warehouse", "contract"}, path
        if "suites_dir" in text:
            assert path.parent.name in {"validate", "contract"}, path


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


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_imports(path: Path, modules: set[str]) -> set[str]:
    """The cohortpool modules ``path`` imports when it is imported: module-level statements only (a
    function-local import runs later and cannot close a circle at import time), TYPE_CHECKING included."""
    own = _module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    statements = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    local = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
        for n in ast.walk(f)
        if isinstance(n, ast.Import | ast.ImportFrom)
    }
    for node in statements:
        if id(node) in local:
            continue
        if isinstance(node, ast.Import):
            bases = [alias.name for alias in node.names]
            candidates = bases
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            # `from package import module` needs the module, not what the package's __init__ re-exports
            candidates = submodules if all(m in modules for m in submodules) else [base, *submodules]
        # every module's own packages run first on any import of it: those edges close no circle
        found |= {name for name in candidates if name in modules and not own.startswith(f"{name}.")}
        found.discard(own)
    return found


def test_there_is_no_import_cycle() -> None:
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph = {name: _module_imports(path, set(paths)) for name, path in paths.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_no_test_hook_is_left_in_the_product() -> None:
    """Fault injection lives in tests/ (fixtures, monkeypatching, the hardening launcher): no setting,
    parameter, option or function of src/ or flows/ exists for a test's sake."""
    hooks = []
    for path in [*sorted(SRC.rglob("*.py")), *sorted((ROOT / "flows").glob("*.py"))]:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [node.name, *(a.arg for a in [*node.args.args, *node.args.kwonlyargs])]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = [node.target.id]
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and ("--test-" in node.value or "test_pause" in node.value)
            ):
                hooks.append(f"{where}:{node.lineno} {node.value[:40]!r}")
            hooks += [f"{where}:{node.lineno} {n}" for n in names if n.startswith("test_") or "pause" in n]
    assert hooks == []
