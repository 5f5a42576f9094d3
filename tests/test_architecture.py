"""The house rules of docs/architecture.md, checked on the source: who may import whom, no
import cycle between rooms, no SQL outside the data layer, thin flows."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("drpo_core", "flows", "sql")


def room(module: str) -> str:
    """drpo_core.sim.world -> drpo_core.sim; drpo_core.trainer -> drpo_core.trainer."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "drpo_core" and len(parts) > 1 else parts[0]


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def imports(path: Path) -> set[str]:
    """Every module this file imports, at any depth (late imports in functions count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in PACKAGES}


def room_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    known = modules()
    for name, path in known.items():
        targets = {room(m) for m in imports(path) if m in known or room(m) in known}
        graph.setdefault(room(name), set()).update(t for t in targets if t != room(name))
    return graph


def test_drpo_core_never_imports_flows_and_only_the_data_layer_reads_sql() -> None:
    for name, path in modules().items():
        rooms = {room(m) for m in imports(path)}
        if name.startswith("drpo_core"):
            assert "flows" not in rooms, name
        if "sql" in rooms:
            assert name.startswith(("drpo_core.warehouse", "sql")), name


def test_the_simulator_does_not_import_the_learners() -> None:
    for name, path in modules().items():
        if name.startswith("drpo_core.sim"):
            rooms = {room(m) for m in imports(path)}
            assert not rooms & {"drpo_core.trainer", "drpo_core.objectives",
                                "drpo_core.evaluation", "drpo_core.experiments",
                                "drpo_core.training_run"}, name


def test_no_import_cycle_between_rooms() -> None:
    graph = room_graph()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*path, node, nxt]))
            if nxt not in state:
                visit(nxt, [*path, node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


SQL_WORDS = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP)\s+[A-Za-z*(]")


@pytest.mark.parametrize("path", sorted((ROOT / "flows").rglob("*.py")), ids=str)
def test_flows_hold_no_sql_and_no_long_function(path: Path) -> None:
    text = path.read_text()
    assert not re.search(r"^\s*(import sql|from sql\b)", text, re.MULTILINE)
    assert ".execute(" not in text and ".sql(" not in text
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not SQL_WORDS.search(node.value), node.value[:60]
        if isinstance(node, ast.FunctionDef):
            assert node.end_lineno - node.lineno + 1 <= 40, f"{node.name} is over 40 lines"


def test_the_cli_only_parses_and_prints() -> None:
    assert len((ROOT / "flows" / "cli.py").read_text().splitlines()) < 250
