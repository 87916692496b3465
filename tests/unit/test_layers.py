"""The package's imports flow one way: no circles, and no module imports a higher layer.

Every import counts: absolute and relative, at module level or inside a function,
``TYPE_CHECKING`` ones included (a type import upwards is a sign the boundary is in the wrong
place), and import paths written as strings (``"pytest_llem.engines.pytorch.engine:Class"``,
``import_module("pytest_llem...")``). The manual's architecture page shows the same layers.
The checks take the package's directory, so the tests at the bottom can run them on a copy
with a planted import and see them fail.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

import pytest_llem

PACKAGE = Path(pytest_llem.__file__).parent

# Top to bottom: a module may import its own layer and the layers below it. A module belongs to
# the layer of its longest matching prefix. ``preflight`` (the check type, host facts) sits below
# the engines, whose own pre-flight checks return its ``Check``; the per-point checks that ask
# the engines live in the harness (``harness.preflight``), so no arrow runs back up.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"", "__main__", "plugin", "cli", "testing"}),  # entry points and test helpers
    frozenset({"harness"}),  # the pytest side: collection, session, fixtures, xdist
    frozenset({"report"}),  # the controller's reporter and what it writes
    frozenset({"settings", "hookspecs"}),  # one option table -> frozen Settings; the hooks
    frozenset({"runners"}),  # where items run: local, containers
    frozenset({"measure"}),  # the protocol
    frozenset({"engines"}),  # engines and backends (one package each), model cache, datasets
    frozenset({"serving"}),  # serving load: OpenAI HTTP client, steady-state window, figures
    frozenset({"preflight"}),  # what backend checks return; facts about this machine
    frozenset({"energy"}),  # energy meters and samplers
    frozenset({"results", "gate"}),  # versioned results; the gate
    frozenset({"study", "stats", "errors", "devices"}),  # pure core and shared types
)

# Modules that never import torch, transformers, vLLM, docker, NVML or pytest, directly or
# through another package module (the pure core, the gate, and the backends' study sections).
PURE: tuple[str, ...] = (
    "study",
    "stats",
    "gate",
    "errors",
    "devices",
    "results",
    "measure.phases",
    "engines.builtin",
    "engines.pytorch.spec",
    "engines.vllm.spec",
)
HEAVY = frozenset(
    {"torch", "transformers", "vllm", "docker", "pynvml", "zeus", "pytest", "_pytest", "xdist"}
)

# (importer, imported): imports that run against the layers on purpose, with the reason.
ALLOWED: dict[tuple[str, str], str] = {}

_STRING_PATH = re.compile(r"^pytest_llem(?:\.\w+)+(?::[\w.]+)?$")


def module_name(path: Path, package: Path) -> str:
    """``pytest_llem.a.b`` for ``<package>/a/b.py`` (a package's ``__init__`` is the package)."""
    parts = [package.name, *path.relative_to(package).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name."""
    return {module_name(p, package): p for p in package.rglob("*.py")}


def _known(name: str, known: dict[str, Path]) -> str | None:
    """The package module ``name`` names (a ``module.attr`` names its module), if any."""
    while name:
        if name in known:
            return name
        name = name.rpartition(".")[0]
    return None


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports(path: Path, module: str, known: dict[str, Path], strings: bool = True) -> set[str]:
    """The package modules ``module`` (at ``path``) imports: statements, relative ones too,
    and string paths."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom):
            source = _absolute(module, path.name == "__init__.py", node)
            names = [f"{source}.{alias.name}" for alias in node.names] + [source]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif (
            strings
            and isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _STRING_PATH.match(node.value)
        ):
            names = [node.value.partition(":")[0]]
        found = [_known(n, known) for n in names if n.split(".")[0] == "pytest_llem"]
        if isinstance(node, ast.ImportFrom) and found:
            # ``from pkg import mod`` imports mod; ``from mod import Name`` imports mod.
            found = [f for f in found[:-1] if f] or [found[-1]]
        out.update(f for f in found if f is not None)
    out.discard(module)
    return out


def graph(package: Path = PACKAGE, strings: bool = True) -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    known = modules(package)
    return {name: imports(path, name, known, strings) for name, path in known.items()}


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


def upward_imports(package: Path = PACKAGE) -> list[str]:
    """Every import of a higher layer, as ``importer (layer) -> imported (layer)``."""
    return sorted(
        f"{importer} (layer {layer_of(importer)}) -> {imported} (layer {layer_of(imported)})"
        for importer, targets in graph(package).items()
        for imported in targets
        if layer_of(imported) < layer_of(importer) and (importer, imported) not in ALLOWED
    )


def circle(package: Path = PACKAGE) -> list[str] | None:
    """An import circle, if any (import statements: a string path is bound late on purpose,
    as a backend's spec names its engine, whose module imports the spec)."""
    edges = graph(package, strings=False)
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
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def _is_pure(module: str) -> bool:
    inner = module.removeprefix("pytest_llem.")
    return any(inner == p or inner.startswith(p + ".") for p in PURE)


def impure_imports(package: Path = PACKAGE) -> list[str]:
    """Pure modules that import a heavy library, or a package module that is not pure."""
    known = modules(package)
    edges = graph(package, strings=False)
    found: list[str] = []
    for name, path in known.items():
        if not _is_pure(name):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                tops = {(node.module or "").split(".")[0]}
            elif isinstance(node, ast.Import):
                tops = {a.name.split(".")[0] for a in node.names}
            else:
                continue
            found.extend(f"{name} imports {top}" for top in sorted(tops & HEAVY))
        found.extend(f"{name} imports {t} (not pure)" for t in edges[name] if not _is_pure(t))
    return sorted(found)


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in graph() if m != "pytest_llem" and layer_of(m) == 0]
    entry = [m for m in unplaced if m.split(".")[1] in LAYERS[0]]
    assert sorted(set(unplaced) - set(entry)) == []


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports() == []


def test_the_import_graph_has_no_circle() -> None:
    found = circle()
    assert found is None, " -> ".join(found or [])


def test_the_pure_core_imports_nothing_heavy() -> None:
    assert impure_imports() == []


def test_every_pure_prefix_names_modules() -> None:
    names = set(modules())
    for prefix in PURE:
        assert any(
            n == f"pytest_llem.{prefix}" or n.startswith(f"pytest_llem.{prefix}.") for n in names
        )


def test_allowed_exceptions_are_documented() -> None:
    text = (Path(__file__).parents[2] / "docs" / "architecture.md").read_text(encoding="utf-8")
    for importer, imported in ALLOWED:
        assert f"{importer} -> {imported}" in text


# -- the checks check: planted imports make them fail ------------------------------------------


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "pytest_llem"
    shutil.copytree(PACKAGE, target, ignore=shutil.ignore_patterns("__pycache__"))
    assert upward_imports(target) == [] and circle(target) is None
    return target


def _plant(package: Path, module: str, line: str) -> None:
    path = package.joinpath(*module.split(".")).with_suffix(".py")
    path.write_text(path.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")


@pytest.mark.parametrize(
    "line",
    [
        "from .. import plugin",
        "from ..plugin import pytest_configure",
        "from pytest_llem import plugin",
        "import pytest_llem.plugin",
        "HOOKS = 'pytest_llem.plugin:pytest_configure'",
        "import importlib; importlib.import_module('pytest_llem.plugin')",
    ],
)
def test_a_planted_upward_import_fails(copy: Path, line: str) -> None:
    _plant(copy, "gate.verdict", line)
    assert upward_imports(copy) == [
        "pytest_llem.gate.verdict (layer 10) -> pytest_llem.plugin (layer 0)"
    ]


def test_a_planted_relative_circle_fails(copy: Path) -> None:
    _plant(copy, "stats.descriptive", "from . import significance")
    found = circle(copy)
    assert found is not None and "pytest_llem.stats.descriptive" in found


def test_a_relative_import_inside_a_package_init_resolves(copy: Path) -> None:
    _plant(copy, "gate.__init__", "from . import verdict")
    assert "pytest_llem.gate.verdict" in graph(copy)["pytest_llem.gate"]


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        ("stats.descriptive", "import torch", "pytest_llem.stats.descriptive imports torch"),
        ("study.loader", "from docker import errors", "pytest_llem.study.loader imports docker"),
        (
            "gate.decide",
            "from ..energy import nvml",
            "pytest_llem.gate.decide imports pytest_llem.energy.nvml (not pure)",
        ),
    ],
)
def test_a_planted_heavy_import_in_the_pure_core_fails(
    copy: Path, module: str, line: str, expected: str
) -> None:
    _plant(copy, module, line)
    assert expected in impure_imports(copy)


def package_edges(package: Path = PACKAGE) -> set[tuple[str, str]]:
    """(importer, imported) between the package's top-level packages and modules."""

    def top(module: str) -> str:
        return ".".join(module.split(".")[:2])

    return {
        (top(importer), top(imported))
        for importer, targets in graph(package, strings=False).items()
        for imported in targets
        if top(importer) != top(imported) and importer != "pytest_llem"
    }


def test_no_two_packages_import_each_other() -> None:
    # A module-level graph can be free of circles while two packages still import each other
    # (preflight.point -> engines -> preflight.check once did): one of them is in the wrong place.
    edges = package_edges()
    both = sorted(f"{a} <-> {b}" for a, b in edges if (b, a) in edges and a < b)
    assert both == []


def test_a_planted_package_cycle_fails(copy: Path) -> None:
    _plant(copy, "preflight.check", "from pytest_llem.engines import model_ref")
    edges = package_edges(copy)
    assert ("pytest_llem.preflight", "pytest_llem.engines") in edges
    assert ("pytest_llem.engines", "pytest_llem.preflight") in edges
