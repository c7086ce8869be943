"""The package's architecture holds: each layer imports only from the layers before it, the import graph
has no cycle, and no module outgrows what a reviewer reads in one sitting."""

import ast
from pathlib import Path

import perun_vyper

PACKAGE = Path(perun_vyper.__file__).resolve().parent
# Layers in order; a module may import from its own layer and the ones before it, never after.
LAYERS = {
    "errors": 0,
    "contracts": 1,
    "core": 1,
    "store": 2,
    "chain": 2,
    "client": 3,
    "watchtower": 4,
    "node": 5,
    "tools": 6,
}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    return {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
        for path in PACKAGE.rglob("*.py")
    }


def _imports(name: str, path: Path) -> set[str]:
    """The perun_vyper modules ``name`` imports (relative imports resolved; ``from x import y`` counts y
    when y is itself a module)."""
    modules = _modules()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            if base.startswith("perun_vyper"):
                for alias in node.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("perun_vyper")}
    return found - {name}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def test_layers__no_module_imports_a_later_layer():
    upward = []
    for name, path in _modules().items():
        own = _layer(name)
        if own is None:  # the top-level package re-exports the public API
            continue
        upward += [f"{name} -> {target}" for target in _imports(name, path) if (_layer(target) or 0) > own]
    assert upward == [], f"imports against the layer order {LAYERS}: {upward}"


def test_layers__import_graph_has_no_cycle():
    graph = {name: _imports(name, path) for name, path in _modules().items()}
    # A package's __init__ re-exports its modules; the edge module -> its own package is not a cycle.
    graph = {name: {t for t in targets if not name.startswith(t + ".")} for name, targets in graph.items()}
    visiting, done, cycles = set(), set(), []

    def visit(node: str, trail: list[str]) -> None:
        if node in done:
            return
        if node in visiting:
            cycles.append(" -> ".join([*trail[trail.index(node) :], node]))
            return
        visiting.add(node)
        for target in sorted(graph.get(node, ())):
            visit(target, [*trail, node])
        visiting.discard(node)
        done.add(node)

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []


def test_modules__none_over_400_lines():
    long = {name: n for name, path in _modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these modules (over {MAX_LINES} lines): {long}"


def test_package__ships_py_typed():
    assert (PACKAGE / "py.typed").is_file()
