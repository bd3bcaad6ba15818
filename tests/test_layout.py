"""The layout the README's architecture section promises: floors, no cycles, files and functions of a readable size.

Floors, top to bottom: app/ -> bench/ and training/ (bench beside training: it may read training,
never the other way) -> models/ -> storage/. Every import counts, those inside functions too.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("app", "bench", "training", "models", "storage")
FLOOR = {"app": 4, "bench": 3, "training": 3, "models": 2, "storage": 1}
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
LONG_FUNCTIONS_ALLOWED = {("app/cli.py", "build_parser")}  # the argparse builder; its train flags come from the configs


def sources(folders=PACKAGES) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py")
                  if "migrations" not in p.parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The first-party modules `path` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name.split(".")[0] in PACKAGES}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in sources()}
    return {name: {m for m in imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_no_module_imports_a_floor_above_its_own():
    upward = []
    for name, targets in graph().items():
        here = name.split(".")[0]
        for target in targets:
            there = target.split(".")[0]
            if FLOOR[there] > FLOOR[here] or (here == "training" and there == "bench"):
                upward.append(f"{name} -> {target}")
    assert not upward, upward


def test_there_is_no_import_cycle():
    edges, state, cycles = graph(), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(path[path.index(target):] + [node, target]) if target in path else target)
            elif target not in state:
                visit(target, path + [node])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not cycles, cycles


def test_no_file_is_longer_than_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in sources(PACKAGES + ("tests",))
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES}
    assert not long, long


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in sources(PACKAGES + ("tests",)):
        rel = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES and (rel, node.name) not in LONG_FUNCTIONS_ALLOWED:
                    long.append(f"{rel}:{node.lineno} {node.name} ({length} lines)")
    assert not long, long
