"""The validation stage's own modules import each other one way: no cycle, not even for type hints."""

from __future__ import annotations

import ast
from pathlib import Path

import cohortpool.validate

PACKAGE = Path(cohortpool.validate.__file__).parent


def _graph() -> dict[str, set[str]]:
    """Module -> the sibling modules it imports anywhere (top level, functions, ``TYPE_CHECKING``)."""
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in modules:
        targets: set[str] = set()
        for node in ast.walk(ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("cohortpool.validate."):
                    targets.add(node.module.split(".")[2])
                elif node.module == "cohortpool.validate":
                    targets |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.Import):
                targets |= {
                    a.name.split(".")[2] for a in node.names if a.name.startswith("cohortpool.validate.")
                }
        graph[name] = targets & modules - {name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_graph_is_read_from_the_sources() -> None:
    graph = _graph()
    assert "outcome" in graph["docs"] and "docs" in graph["batch"]


def test_no_import_cycle_between_validation_modules() -> None:
    assert _cycle(_graph()) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
