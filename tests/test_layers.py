"""The package's layers: every import points down, and no modules import each other in a circle.

Every import counts, at module level or inside a function, under TYPE_CHECKING or not: a lazy import
hides a cycle from Python, not from the design. docs/architecture.md draws the same picture.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from imagesearch.config import REPO_ROOT

PACKAGE_DIR = REPO_ROOT / "layers" / "shared" / "imagesearch"
FUNCTIONS_DIR = REPO_ROOT / "functions"

# Lowest first. A module may import its own package and anything on a lower rank; packages that share a
# rank are peers and do not import each other.
LAYERS: list[tuple[str, set[str]]] = [
    ("foundation", {"imagesearch", "errors", "logs", "tables", "observability", "concurrency"}),
    ("settings and codecs", {"config", "cursors", "sigv4"}),
    ("adapters", {"db", "storage", "imaging"}),
    ("image metadata", {"exif", "enrichment"}),
    ("model, tenants and outbound events", {"model", "auth", "webhooks"}),
    ("images", {"images"}),
    ("ingestion and search", {"ingest", "search"}),
    ("composition root", {"runtime"}),
    ("HTTP plumbing", {"http"}),
    ("outside: clients and assets", {"client", "export", "web"}),
    ("outside: demo", {"demo"}),
    ("outside: local stack", {"local"}),
    ("outside: command line", {"cli"}),
]
RANK = {unit: rank for rank, (_, units) in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str:
    """The layer unit of an imagesearch module: its first sub-package or module (`imagesearch` itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports_of(path: Path, module: str) -> Iterator[tuple[str, int]]:
    """(imported imagesearch module, line) for every import in the file, resolved to the deepest module."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "imagesearch":
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "imagesearch":
                continue
            for alias in node.names:
                # `from imagesearch.db import migrate` imports a module; `... import Database` a name.
                candidate = f"{target}.{alias.name}"
                yield (candidate if candidate in ALL_MODULES else target), node.lineno


PACKAGE_FILES = {module_name(p): p for p in sorted(PACKAGE_DIR.rglob("*.py"))}
ALL_MODULES = set(PACKAGE_FILES)
FUNCTION_FILES = sorted(FUNCTIONS_DIR.glob("*/app.py"))


def import_graph() -> dict[str, dict[str, int]]:
    graph: dict[str, dict[str, int]] = {}
    for module, path in PACKAGE_FILES.items():
        edges = graph.setdefault(module, {})
        for target, line in imports_of(path, module):
            if target != module:
                edges.setdefault(target, line)
    return graph


def test_every_package_module_has_a_layer() -> None:
    assert {unit_of(m) for m in ALL_MODULES} <= set(RANK), "add the new package to LAYERS and the docs"


def test_imports_point_down() -> None:
    back_edges = []
    for module, edges in import_graph().items():
        unit = unit_of(module)
        for target, line in edges.items():
            target_unit = unit_of(target)
            if target_unit == unit or target_unit == "imagesearch":
                continue
            if RANK[target_unit] >= RANK[unit]:
                where = PACKAGE_FILES[module].relative_to(REPO_ROOT)
                back_edges.append(f"{where}:{line}: {module} -> {target}")
    assert not back_edges, "imports that point up or sideways:\n" + "\n".join(sorted(back_edges))


def test_no_import_cycles() -> None:
    graph = import_graph()
    # Tarjan's strongly connected components; any component of more than one module is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in graph:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not cycles, "modules that import each other in a circle: " + "; ".join(map(str, cycles))


@pytest.mark.parametrize("path", FUNCTION_FILES, ids=lambda p: p.parent.name)
def test_functions_use_the_package_only(path: Path) -> None:
    """Handlers sit on top: they import the shared package (never the local stack or the CLI)."""
    outside = [
        f"{target} (line {line})"
        for target, line in imports_of(path, f"function.{path.parent.name}")
        if RANK[unit_of(target)] > RANK["http"]
    ]
    assert not outside, f"{path.relative_to(REPO_ROOT)} imports from the outside layers: {outside}"


def test_the_checker_sees_a_back_edge(tmp_path: Path) -> None:
    """The walker itself: an upward import in a file is reported with its target."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from imagesearch.local.stack import LocalStack\n", "utf-8")
    assert list(imports_of(bad, "imagesearch.db.bad")) == [("imagesearch.local.stack", 2)]
