"""The house stays as its documents describe it: the README's layout table and
ARCHITECTURE.md name every room that exists (and no room that doesn't), imports go one way
between the top-level packages, no module imports another that imports it back, and every
"invariant N" the code cites is one ARCHITECTURE.md numbers."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text(encoding="utf-8")
ARCHITECTURE = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
PACKAGES = ("schemas", "segments", "state", "stream")
LEFT_OF = {p: set(PACKAGES[:i]) for i, p in enumerate(PACKAGES)}
"""What each top-level package may import from (besides itself)."""


def layout_table() -> set[str]:
    section = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([\w/]+/)` \|", section, re.M))


def sub_packages(top: str) -> set[str]:
    return {
        f"{p.parent.relative_to(ROOT).as_posix()}/"
        for p in (ROOT / top).glob("*/__init__.py")
        if "__pycache__" not in p.parts
    }


def test_the_readme_layout_table_is_the_tree() -> None:
    rooms = {f"{p}/" for p in PACKAGES if p != "stream"} | sub_packages("stream")
    kinds = sub_packages("tests")
    table = layout_table()
    assert rooms | kinds | {"bench/"} == table


def test_architecture_names_every_sub_package_in_its_tree() -> None:
    tree = ARCHITECTURE.split("```", 2)[1]
    for room in sub_packages("stream") | sub_packages("tests"):
        leaf = room.rstrip("/").rsplit("/", 1)[1]
        assert re.search(rf"^\s+{leaf}/\s", tree, re.M), f"{room} missing from the tree"


def test_every_path_architecture_cites_exists() -> None:
    cited = set(
        re.findall(r"`((?:schemas|segments|state|stream|tests|bench)/[\w/.]*)`", ARCHITECTURE)
    )
    assert cited, "no paths found: the pattern is wrong"
    missing = sorted(c for c in cited if not (ROOT / c).exists())
    assert not missing


def modules() -> Iterator[tuple[str, Path]]:
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def imports_of(name: str, path: Path) -> set[str]:
    """Every project module ``name`` imports: at the top, in functions or under
    TYPE_CHECKING alike (a cycle hidden behind TYPE_CHECKING is still a cycle to a reader)."""
    known = {m for m, _ in modules_cached()}
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from pkg import module` imports the module, not pkg
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in known else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in known and m != name}


_MODULES: list[tuple[str, Path]] = []


def modules_cached() -> list[tuple[str, Path]]:
    if not _MODULES:
        _MODULES.extend(modules())
    return _MODULES


@pytest.mark.parametrize("top", PACKAGES)
def test_imports_go_one_way_between_the_top_level_packages(top: str) -> None:
    wrong = [
        f"{name} imports {other}"
        for name, path in modules_cached()
        if name.split(".")[0] == top
        for other in imports_of(name, path)
        if other.split(".")[0] not in LEFT_OF[top] | {top}
    ]
    assert not wrong


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the groups of modules that reach each other through imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            groups.append(sorted(group))

    for node in graph:
        if node not in index:
            visit(node)
    return groups


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = {name: imports_of(name, path) for name, path in modules_cached()}
    cycles = [group for group in strongly_connected(graph) if len(group) > 1]
    assert not cycles


def test_every_invariant_the_code_cites_is_numbered_in_architecture() -> None:
    numbered = {
        int(n)
        for n in re.findall(r"^(\d+)\. \*\*", ARCHITECTURE.split("## Invariants", 1)[1], re.M)
    }
    assert numbered == set(range(1, 13))
    cited: set[int] = set()
    for path in [*(p for _, p in modules_cached()), *(ROOT / "tests").rglob("*.py")]:
        for m in re.finditer(
            r"[Ii]nvariants? ((?:\d+(?:, | and | or )?)+)", path.read_text(encoding="utf-8")
        ):
            cited.update(int(n) for n in re.findall(r"\d+", m.group(1)))
    assert cited, "no citations found: the pattern is wrong"
    assert cited <= numbered


def test_nothing_imports_from_outside_the_clone() -> None:
    """A test once put a reviewer's ``/tmp`` folder on ``sys.path`` and imported a helper
    from it: it passed on that machine and failed to collect on every fresh clone. Code
    and tests import only what the clone holds and the venv installs."""
    found = []
    for p in ROOT.glob("**/*.py"):
        rel = p.relative_to(ROOT).as_posix()
        if rel.startswith((".venv/", "build/")) or "/." in f"/{rel}":
            continue
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"sys\.path\.(insert|append)", line) and "/tmp" in line:
                found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, found
