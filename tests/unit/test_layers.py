"""The package's imports flow one way: no circles, and no module imports a higher layer.

Every import counts, ``TYPE_CHECKING`` ones included (a type import upwards is a sign the
boundary is in the wrong place). ARCHITECTURE.md shows the same layers; exceptions are listed
in ``ALLOWED`` with their reason, and must be named there too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pytest_llem

PACKAGE = Path(pytest_llem.__file__).parent
ROOT = PACKAGE.parent

# Top to bottom: a module may import its own layer and the layers below it. A module belongs to
# the layer of its longest matching prefix (``measure.stats`` is pure core, ``measure`` is not).
LAYERS: tuple[frozenset[str], ...] = (
    frozenset(
        {"", "__main__", "plugin", "merge", "migrate", "validate.cli"}
    ),  # entry points: pytest, CLIs, test helpers
    frozenset({"fixtures", "setup", "workers", "guard", "ordering"}),  # pytest wiring
    frozenset({"collect"}),  # study files -> items
    frozenset({"session", "report", "resume", "shard"}),  # role objects and what they write
    frozenset({"validate"}),  # the validation kit's parts (model, probe, analysis, render)
    frozenset({"options", "option_table", "converters", "hookspecs"}),  # resolved settings
    frozenset({"runners", "entrypoint"}),  # where items run
    frozenset({"preflight", "host"}),  # can a point run here, and what this machine has
    frozenset({"measure"}),  # the protocol
    frozenset({"engines", "energy", "testing"}),  # device and library access; tiny models
    frozenset({"results", "gate"}),  # results and the pure gate
    frozenset(
        {
            "study",
            "catalog",
            "errors",
            "secrets",
            "devices",
            "progress",
            "measure.stats",
            "timeouts",
        }
    ),  # pure core and shared types
)

# (importer, imported): imports that run against the layers on purpose, with the reason.
ALLOWED: dict[tuple[str, str], str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "pytest_llem":
                for alias in node.names:
                    candidate = f"{node.module}.{alias.name}"
                    out.add(candidate if candidate in modules else node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "pytest_llem")
    return out


def graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def layer_of(module: str) -> int:
    """Index into LAYERS (0 is the top)."""
    inner = module.removeprefix("pytest_llem").lstrip(".")
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for index, names in enumerate(LAYERS):
        for name in names:
            if inner == name or inner.startswith(name + ".") or name == "":
                length = len(name) + 1 if name else 0
                if best is None or length > best[0]:
                    best = (length, index)
    assert best is not None, module
    return best[1]


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in graph() if m != "pytest_llem" and layer_of(m) == 0]
    entry = {f"pytest_llem.{n}" for n in LAYERS[0] if n}
    assert sorted(set(unplaced) - entry) == []


def test_no_module_imports_a_higher_layer() -> None:
    upward = sorted(
        f"{importer} (layer {layer_of(importer)}) -> {imported} (layer {layer_of(imported)})"
        for importer, targets in graph().items()
        for imported in targets
        if layer_of(imported) < layer_of(importer) and (importer, imported) not in ALLOWED
    )
    assert upward == []


def test_the_import_graph_has_no_circle() -> None:
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            circle = visit(start)
            assert circle is None, " -> ".join(circle)


def test_allowed_exceptions_are_documented() -> None:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for importer, imported in ALLOWED:
        assert f"{importer} -> {imported}" in text


@pytest.mark.parametrize(
    "module", ["pytest_llem.study", "pytest_llem.gate", "pytest_llem.measure.stats"]
)
def test_the_pure_core_imports_no_heavy_or_pytest_module(module: str) -> None:
    modules = _modules()
    heavy = {"torch", "transformers", "vllm", "docker", "pynvml", "pytest", "_pytest"}
    for name, path in modules.items():
        if name == module or name.startswith(module + "."):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                names = (
                    [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else []
                )
                assert not {n.split(".")[0] for n in names} & heavy, (name, names)
