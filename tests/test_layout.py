"""The package's shape: no import circle between modules (function-level imports included), no import up the
layers, no function a newcomer has to scroll through."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "visionlab"
MAX_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for f in PKG.rglob("*.py"):
        parts = f.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _type_only(tree: ast.AST) -> set[int]:
    """Nodes under ``if TYPE_CHECKING:``: read by type checkers only, never run."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(x) for n in node.body for x in ast.walk(n)}
    return skip


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """Modules of the package that ``name`` imports anywhere: at module level or inside a function (a lazy import
    is still a dependency, and a circle through one breaks as soon as both ends are loaded)."""
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    skip = _type_only(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in mods}
        elif isinstance(node, ast.ImportFrom):
            base = pkg.split(".")[: len(pkg.split(".")) - (node.level - 1)] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            subs = {f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in mods}
            found |= subs if len(subs) == len(node.names) else ({mod} & set(mods)) | subs
    return found - {name}


# The layers, lowest first: a module may import its own layer and those below, never one above. The ground
# floor is torch-free plumbing; detection sits above inference and evaluation; the verbs and apps at the top.
LAYERS = [
    {"errors", "files", "io", "registry", "extras", "classes", "verbs", "progress", "config", "images", "assets",
     "boxes", "plots", "cli_errors", "cli_options", "version", "timing", "outdir"},
    {"scratch", "data"},
    {"models", "training", "runs"},
    {"resolve", "evaluation", "inference"},
    {"detect"},
    {"predict", "compare", "api", "active", "studies"},
    {"serve", "flagship"},
    {"cli", "__main__", "visionlab"},
]
# (importer, imported) pairs allowed to go up, each with its reason. Empty: keep it so.
ALLOWED_UP: dict[tuple[str, str], str] = {}


def _area(module: str) -> str:
    """The top-level module or subpackage a module belongs to (``visionlab`` for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "visionlab"


def test_no_upward_import():
    mods = _modules()
    rank = {area: i for i, layer in enumerate(LAYERS) for area in layer}
    unranked = sorted({_area(m) for m in mods} - set(rank))
    assert not unranked, f"give these a layer in LAYERS: {unranked}"
    up = [f"{m} -> {n}" for m, p in mods.items() for n in sorted(_imports(m, p, mods))
          if rank[_area(n)] > rank[_area(m)] and (m, n) not in ALLOWED_UP]
    assert not up, "imports up the layers: " + "; ".join(up)


def test_the_layer_check_sees_function_level_imports(tmp_path):
    """A lazy import inside a function counts, and one under TYPE_CHECKING does not."""
    mods = {"visionlab.data.x": tmp_path / "x.py", "visionlab.detect": tmp_path / "d.py", "visionlab.api": tmp_path / "a.py"}
    mods["visionlab.data.x"].write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..api import f\n"
                                        "def g():\n    from ..detect import h\n")
    assert _imports("visionlab.data.x", mods["visionlab.data.x"], mods) == {"visionlab.detect"}


def test_no_import_circle():
    mods = _modules()
    graph = {m: _imports(m, p, mods) for m, p in mods.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)
    assert len(graph) > 50  # the walk saw the package


def test_functions_are_short_or_say_why():
    long = []
    for f in PKG.rglob("*.py"):
        lines = f.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                above = lines[first - 2] if first >= 2 else ""
                if n >= MAX_LINES and "long:" not in above:
                    long.append(f"{f.relative_to(SRC)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "functions of 80+ lines without a '# long: why' comment above them: " + "; ".join(long)
