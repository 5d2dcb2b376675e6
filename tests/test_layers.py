"""The library's layers: no module imports one from a layer above it, and there is no cycle.

Run ``python -m pytest tests/test_layers.py -s`` to print the picture."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "workflow" / "deploybench"
# Lowest first. A module may import its own layer and the ones below.
LAYERS = {
    0: ("errors", "specs", "hardware", "stats", "gpu", "isolation", "plugins", "text_encoder"),
    1: ("io", "feeds", "parity", "timing", "onnx_tools", "models", "inputs", "placement"),
    2: ("records", "tasks"),
    3: ("backends",),
    4: ("settings", "plan"),
    5: ("stages",),
    6: ("entry", "worker", "retry"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(p for p in parts if p != "__init__")


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    for layer, names in LAYERS.items():
        if top in names:
            return layer
    raise AssertionError(f"deploybench.{module} belongs to no layer: add it to LAYERS")


def imports_of(path: Path) -> set[str]:
    """Every deploybench module ``path`` imports, at the top or inside a function."""
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("deploybench"):
                target = node.module.removeprefix("deploybench").lstrip(".")
            else:
                continue
            for alias in node.names:
                candidate = f"{target}.{alias.name}" if target else alias.name
                found.add(
                    candidate
                    if (PACKAGE / candidate.replace(".", "/")).exists()
                    or (PACKAGE / f"{candidate.replace('.', '/')}.py").exists()
                    else target
                )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("deploybench."):
                    found.add(alias.name.removeprefix("deploybench."))
    return {f for f in found if f}


def import_graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py")) if module_name(p)}


def test_no_module_imports_from_a_higher_layer():
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in import_graph().items()
        for target in targets
        if layer_of(target) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_there_is_no_import_cycle():
    graph = import_graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, node, target]))
            if not state.get(target):
                visit(target, [*trail, node])
        state[node] = 2

    for module in graph:
        if not state.get(module):
            visit(module, [])


def test_print_the_layered_picture(capsys):
    graph = import_graph()
    lines = []
    for layer in sorted(LAYERS, reverse=True):
        members = sorted(m for m in graph if layer_of(m) == layer)
        lines.append(f"layer {layer}: " + ", ".join(members))
        for module in members:
            below = sorted(t for t in graph[module] if t in graph and layer_of(t) < layer)
            if below:
                lines.append(f"    {module} -> {', '.join(below)}")
    with capsys.disabled():
        print("\n" + "\n".join(lines))
    listed = [
        m for line in lines if line.startswith("layer") for m in line.split(": ")[1].split(", ")
    ]
    # every module Python finds in the package (not only the .py files this test parsed)
    assert sorted(listed) == sorted(package_modules()), "every module appears in one layer"


def package_modules(path: Path = PACKAGE, prefix: str = "") -> list[str]:
    """The package's modules as the import system lists them, subpackages included."""
    found = []
    for info in pkgutil.iter_modules([str(path)]):
        found.append(prefix + info.name)
        if info.ispkg:
            found += package_modules(path / info.name, f"{prefix}{info.name}.")
    return found
