"""The house rules that a reader relies on, over all of ``src/tether``: no module over
300 lines, no function over 60, no import cycle (type-only and deferred imports count:
they are the dependencies a reader follows too), and few plain modules at the top of
the package (the rest live in packages that show the architecture)."""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

import tether

ROOT = Path(tether.__file__).parent
SRC = ROOT.parent
MAX_MODULE_LINES = 300
MAX_FUNCTION_LINES = 60
MAX_TOP_MODULES = 8


def _sources() -> list[Path]:
    return sorted(ROOT.rglob("*.py"))


def _where(path: Path) -> str:
    return str(path.relative_to(SRC))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    """Every module of tether that ``path`` names in an import: at module level, inside
    functions, and under ``if TYPE_CHECKING``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m == "tether" or m.startswith("tether.")}


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in _sources()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = {d for d in _imports(path, name) if d in modules and d != name}
        # importing a.b.c imports the packages a and a.b first
        deps |= {p for d in deps for p in _parents(d) if p in modules and p != name}
        # A module inside a package reaches its own parents anyway: not a cycle by itself.
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    return graph


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
        for w in sorted(graph[v]):
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

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def _loop(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One shortest import loop through the component's first module, for the message."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(graph[v] & members):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if w not in came_from:
                came_from[w] = v
                queue.append(w)
    return [*component, start]


def _functions(path: Path) -> list[tuple[str, int, int]]:
    """(qualified name, first line, length in lines) of every function in ``path``."""
    out: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                out.append((name, child.lineno, length))
                visit(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text()), "")
    return out


def test_no_import_cycles() -> None:
    graph = _graph()
    assert "tether.studio.link.facade" in graph  # the scan sees the package
    loops = [f"{', '.join(c)} (for one: {' -> '.join(_loop(graph, c))})" for c in _cycles(graph)]
    assert not loops, "import cycles (type-only and deferred imports count):\n  " + "\n  ".join(
        loops
    )


def test_the_cycle_finder_finds_one_and_names_its_loop() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _loop(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_type_only_and_deferred_imports_count(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from tether.a import A\n"
        "def f():\n    import tether.b\n    from . import c\n"
    )
    assert _imports(module, "tether.pkg.m") == {
        "tether.a",
        "tether.a.A",
        "tether.b",
        "tether.pkg",
        "tether.pkg.c",
    }


def test_no_module_over_300_lines() -> None:
    sizes = {_where(p): len(p.read_text().splitlines()) for p in _sources()}
    assert len(sizes) > 50, sizes  # the scan sees all of src/tether
    too_big = sorted(f"{where}: {n} lines" for where, n in sizes.items() if n > MAX_MODULE_LINES)
    assert not too_big, f"modules over {MAX_MODULE_LINES} lines:\n  " + "\n  ".join(too_big)


def test_no_function_over_60_lines() -> None:
    too_long = [
        f"{_where(path)}:{line} {name}: {length} lines"
        for path in _sources()
        for name, line, length in _functions(path)
        if length > MAX_FUNCTION_LINES
    ]
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines:\n  " + "\n  ".join(too_long)


def test_the_function_measure_sees_methods_and_nested_functions(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("class K:\n    async def m(self):\n        def inner():\n            pass\n")
    assert _functions(module) == [("K.m", 2, 3), ("K.m.inner", 3, 2)]


def test_few_plain_modules_at_the_top_of_tether() -> None:
    plain = sorted(
        p.name for p in ROOT.glob("*.py") if p.name not in ("__init__.py", "__main__.py")
    )
    assert len(plain) <= MAX_TOP_MODULES, (
        f"{len(plain)} plain modules directly under src/tether (at most {MAX_TOP_MODULES}): "
        f"{', '.join(plain)}"
    )
