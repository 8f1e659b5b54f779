"""Code-shape rules of docs/architecture.md: no function over 80 lines, no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "visionforge").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def test_no_function_is_longer_than_80_lines():
    long = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_LINES:
                    long.append(f"{name}.{node.name}: {length} lines")
    assert not long, "split these along their seams:\n" + "\n".join(long)


def _module_level_imports(path: Path, modules: set[str]) -> set[str]:
    """visionforge modules imported when ``path`` is imported (not those inside functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        stmts = [node]
        if isinstance(node, ast.If | ast.Try):  # `if TYPE_CHECKING:` blocks do not run
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            stmts = list(ast.walk(node))
        for stmt in stmts:
            if isinstance(stmt, ast.ImportFrom) and stmt.module and stmt.level == 0:
                base = stmt.module
                for alias in stmt.names:
                    sub = f"{base}.{alias.name}"
                    found.add(sub if sub in modules else base)
            elif isinstance(stmt, ast.Import):
                found.update(a.name for a in stmt.names)
    return {m for m in found if m in modules}


def test_no_import_cycle_at_module_level():
    modules = _modules()
    graph = {name: _module_level_imports(path, set(modules)) for name, path in modules.items()}
    # a package's __init__ importing its own submodules is how packages work, not a cycle
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not (d.startswith(name + ".") and
                                                 modules[name].name == "__init__.py")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                cycle = visit(dep)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state:
            cycle = visit(name)
            if cycle:
                pytest.fail("import cycle: " + " -> ".join(cycle))
