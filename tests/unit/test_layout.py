"""The rooms of the house: first-party imports form no circle, and each room imports
only what README's "Where things live" table allows."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("api", "workflows", "activities", "worker", "engine", "shared")
# room → rooms it may import (README: "Where things live")
ALLOWED = {
    "shared": {"shared"},
    "engine": {"engine", "shared"},
    "workflows": {"workflows", "shared", "engine"},
    "activities": {"activities", "shared", "engine"},
    "worker": {"worker", "activities", "workflows", "engine", "shared"},
    "api": {"api", "engine", "shared", "worker"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    out = {}
    for room in ROOMS:
        for path in (ROOT / room).rglob("*.py"):
            if "migrations/versions" in path.as_posix():
                continue
            out[_module_name(path)] = path
    return out


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """First-party modules ``path`` imports (anywhere in the file, lazy imports included)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    return {name: _imports(path, name, known) for name, path in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle() -> None:
    graph = _graph()
    # package __init__ modules are re-export points, not rooms of their own
    graph = {k: {d for d in v if _modules()[d].name != "__init__.py"} for k, v in graph.items()}
    assert _cycles(graph) == []


def test_finds_a_circle() -> None:
    """The detector itself works (a → b → a is reported)."""
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_rooms_import_only_what_they_may() -> None:
    bad = []
    for mod, deps in _graph().items():
        room = mod.split(".")[0]
        for dep in deps:
            if dep.split(".")[0] not in ALLOWED[room]:
                bad.append(f"{mod} imports {dep}")
    assert bad == []


def test_gateway_reaches_the_worker_room_only_to_embed_or_launch_one() -> None:
    users = sorted(m for m, deps in _graph().items()
                   if m.startswith("api.") and any(d.startswith("worker") for d in deps))
    assert set(users) <= {"api.embedded", "api.cli"}  # cli: `tokenhub worker`
