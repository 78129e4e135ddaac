"""The studies package's shape: what the fork server preloads exists, and its modules import each other in layers."""
from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

import visionlab.studies
from visionlab.studies.executors import PRELOAD

PACKAGE = Path(visionlab.studies.__file__).parent


@pytest.mark.parametrize("name", PRELOAD)
def test_every_preload_entry_is_a_module(name):
    # multiprocessing skips a preload name that does not import without a word: the workers would then each
    # import it again (seconds per worker), as they did while the list named visionlab.evaluate
    assert importlib.util.find_spec(name) is not None, name


def _imports(path: Path) -> set[str]:
    """The sibling modules a module of the package imports (at the top or inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("visionlab.studies."):
            found.add(node.module.split(".")[2])
    return found


def test_no_import_cycle():
    graph = {p.stem: _imports(p) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    graph = {m: {d for d in deps if d in graph} for m, deps in graph.items()}
    done: set[str] = set()

    def visit(m: str, path: list[str]) -> None:
        if m in path:
            pytest.fail("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        for d in sorted(graph[m]):
            visit(d, path + [m])
        done.add(m)

    for m in sorted(graph):
        visit(m, [])
