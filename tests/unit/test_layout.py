"""The house rules that a reader relies on: no import cycles in tether, and no module
of the link package over 300 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import tether

ROOT = Path(tether.__file__).parent
LINK_MAX_LINES = 300


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    """Modules of tether that ``path`` imports at its top level, type-only imports
    (``if TYPE_CHECKING:``) included: a cycle through them is a cycle for a reader."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)

    visit(tree.body)
    return {m for m in found if m == "tether" or m.startswith("tether.")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = {d for d in _imports(path, name) if d in modules and d != name}
        # importing a.b.c imports the packages a and a.b first
        graph[name] = deps | {p for d in deps for p in _parents(d) if p in modules and p != name}
    return graph


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            strong(v)
    return found


def test_no_import_cycles() -> None:
    graph = _graph()
    assert "tether.studio.link.facade" in graph  # the scan sees the package
    # A package importing its own submodules is not a cycle by itself.
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_link_modules_are_small() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "studio/link").glob("*.py")}
    assert len(sizes) >= 6, sizes
    too_big = {name: n for name, n in sizes.items() if n > LINK_MAX_LINES}
    assert not too_big, f"over {LINK_MAX_LINES} lines: {too_big}"
