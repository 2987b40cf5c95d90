"""No module of schemas/, segments/ or state/ imports one that imports it back, not even
under ``TYPE_CHECKING``: a newcomer reads a room's modules in import order, leaves first.

(An import of a package's submodule counts as an import of that submodule only, not of
the package's ``__init__``, which re-exports the room's front door.)
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("schemas", "segments", "state")


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The modules of ``modules`` that ``path`` imports, wherever the import stands."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules
            out.update(subs or {node.module})
    return out & modules


def _graph() -> dict[str, set[str]]:
    files = [f for p in PACKAGES for f in (ROOT / p).rglob("*.py")]
    modules = {_module(f) for f in files}
    return {_module(f): _imports(f, modules) - {_module(f)} for f in files}


def _cycle_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path of imports from ``start`` back to itself, if there is one."""
    stack, seen = [(start, [start])], set()
    while stack:
        here, path = stack.pop()
        for nxt in graph[here]:
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_no_module_imports_itself_back() -> None:
    graph = _graph()
    cycles = [" -> ".join(c) for m in sorted(graph) if (c := _cycle_from(graph, m))]
    assert not cycles, "\n".join(cycles)
