"""The house's rules, checked on its source: no import cycle in ``orchestrator/``, settings
import no component, no module of ``orchestrator/`` or ``bench/`` over 300 lines, tests and
bench never import each other."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "orchestrator"
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path) -> Iterator[str]:
    """Every module a file imports, at any depth (function-level imports count too)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    known = modules()
    return {
        name: {other for other in imported(path) if other in known and other != name}
        for name, path in known.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while (top := stack.pop()) != node:
                component.append(top)
            if component:
                found.append(sorted([node, *component]))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_the_package() -> None:
    graph = import_graph()
    assert len(graph) > 50 and "orchestrator.dispatcher" in graph["orchestrator.worker"]
    assert cycles(graph) == []


def test_settings_import_no_component() -> None:
    """``orchestrator validate`` and the edge read settings without loading the dispatch chain."""
    allowed = {"orchestrator", "orchestrator.defaults", "orchestrator.errors"}
    known = modules()
    found = {name for name in imported(PACKAGE / "settings.py") if name in known}
    assert "orchestrator.defaults" in found and found <= allowed, found - allowed


def test_no_module_is_over_300_lines() -> None:
    sources = [*PACKAGE.rglob("*.py"), *(ROOT / "bench").rglob("*.py")]
    long = {
        str(path.relative_to(ROOT)): lines
        for path in sources
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert len(sources) > 100 and long == {}


def test_tests_and_bench_do_not_import_each_other() -> None:
    for folder, other in (("tests", "bench"), ("bench", "tests")):
        offenders = {
            str(path.relative_to(ROOT))
            for path in (ROOT / folder).rglob("*.py")
            if any(name.split(".")[0] == other for name in imported(path))
        }
        assert offenders == set(), f"{folder} imports {other}: {offenders}"
