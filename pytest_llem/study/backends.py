"""The backend registry: the one place a backend is defined.

A backend is a name, the study section it reads (a pydantic model), the engine that runs it
(an import path, loaded only when an item runs), what pre-flight needs (packages, an install
line), the devices and precisions it accepts, and its default container image. The grammar,
options, pre-flight, collection and runners all ask the registry; none keeps its own list.

The built-in backends live in ``engines/pytorch/`` and ``engines/vllm/`` (assembled in
``engines/builtin.py``); other packages add theirs through the ``pytest_llem_backends`` hook
(see ``hookspecs.py`` and the manual's "Adding a backend"). Nothing here names a backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

# The template of this project's published images, which the built-in backends use ({cuda} is
# "-cuda<major>" on a CUDA host, else empty). A backend from another package has no default
# image unless it names its own: this project's registry has no image of it.
PROJECT_IMAGE = "ghcr.io/llenergymeasure/{backend}:{version}{cuda}"
# What a backend accepts unless it says otherwise; a backend may declare more.
COMMON_DEVICES = frozenset({"cuda", "cpu"})
COMMON_PRECISIONS = frozenset({"fp32", "fp16", "bf16"})


@dataclass(frozen=True)
class BackendSpec:
    """Everything pytest-llem needs to know about one backend.

    Attributes:
        name: the backend's name in study files (``backend: NAME``, the ``NAME:`` section,
            ``NAME.key`` sweep scoping, the pytest marker, ``LLEM_RUNNER_NAME``).
        section: the pydantic model of the ``NAME:`` block (frozen, ``extra="forbid"``).
        engine: ``"module:Class"``; the class has ``load(config, base_dir) -> Engine``, the
            module may have ``load_key(config) -> str`` and ``environment() -> dict``.
        packages: import names pre-flight checks before the item runs (locally).
        install: the line that installs them, shown when one is missing.
        devices: devices the backend accepts in a study (any names: a backend may add its
            own, e.g. ``rocm``).
        precisions: precisions it accepts (likewise open, e.g. ``fp8``).
        lora: whether ``lora:`` adapters are supported.
        check: further rules on a whole config: returns the problem, or None.
        hub_models: models are Hugging Face ids, local paths or built-in aliases, which
            pre-flight resolves offline (False: the engine knows its own models).
        preflight: ``"module:function"`` of further local pre-flight checks, called as
            ``function(config, host) -> list[Check]`` once the packages are importable.
        image: default container image, a template of {backend}, {version} and {cuda};
            None: no default (the docker runner then needs ``docker:IMAGE``).
        description: the marker's help text.
        passthrough: where undeclared keys of the section's open blocks (``extra="allow"``)
            go, ending the collection note that lists them ("" when it has none).
        collect_check: ``"module:function"`` of study-wide checks at collection, called as
            ``function(plan) -> list[Problem]`` (it may read the installed library, but must
            not fail when it is absent).
        build_note: ``"module:function"`` called as ``function(host) -> str | None`` after
            a local pre-flight: which build of the library the host has, noted once.
        fates: what became of LLenergyMeasure's fields of this backend's section
            (``study.fates.Fate`` rows), for reading the original's study files.
        server: ``"module:function"`` that starts the backend's own OpenAI-compatible
            server for serving items, called as ``function(config, base_dir, port)`` and
            returning the command to run (``serving.process.Launch``); None: serving items
            of this backend need ``serve.endpoint``.
    """

    name: str
    section: type[BaseModel]
    engine: str
    packages: tuple[str, ...] = ()
    install: str = ""
    devices: frozenset[str] = COMMON_DEVICES
    precisions: frozenset[str] = COMMON_PRECISIONS
    lora: bool = False
    # Takes the validated ExperimentConfig (typed Any: the model module imports this one).
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)
    hub_models: bool = True
    preflight: str | None = None
    image: str | None = None
    description: str = ""
    passthrough: str = ""
    collect_check: str | None = None
    build_note: str | None = None
    # LLenergyMeasure compatibility: what became of the original's fields of this section
    # (study.fates.Fate rows; typed Any: fates.py reads this module's specs duck-typed).
    fates: tuple[Any, ...] = field(default=(), compare=False)
    server: str | None = None

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"backend name {self.name!r}: use a lower-case identifier")
        if ":" not in self.engine:
            raise ValueError(f"backend {self.name}: engine must be 'module:Class'")

    @property
    def marker(self) -> str:
        """The ``markers`` ini line registering this backend's marker."""
        return f"{self.name}: {self.description or f'runs on the {self.name} backend'}"

    def preflight_checks(self) -> Callable[..., Any] | None:
        """The backend's further pre-flight checks, imported on first use."""
        return _import(self.preflight) if self.preflight else None

    def collect_checks(self) -> Callable[..., Any] | None:
        """The backend's study-wide collection checks, imported on first use."""
        return _import(self.collect_check) if self.collect_check else None

    def build_noter(self) -> Callable[..., Any] | None:
        """The backend's build note, imported on first use."""
        return _import(self.build_note) if self.build_note else None

    def server_launcher(self) -> Callable[..., Any] | None:
        """The backend's server command builder, imported on first use."""
        return _import(self.server) if self.server else None

    def engine_module(self) -> Any:
        """Import the engine's module (heavy: only when an item runs)."""
        return importlib.import_module(self.engine.partition(":")[0])

    def engine_class(self) -> Any:
        """The engine class."""
        return getattr(self.engine_module(), self.engine.partition(":")[2])

    def record(self) -> dict[str, Any]:
        """What a container needs to rebuild this spec: import paths and plain data."""
        section = f"{self.section.__module__}:{self.section.__qualname__}"
        return {
            "name": self.name,
            "section": section,
            "engine": self.engine,
            "devices": sorted(self.devices),
            "precisions": sorted(self.precisions),
            "lora": self.lora,
            "server": self.server,
        }


def _import(path: str) -> Any:
    module, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target


def spec_from_record(record: dict[str, Any]) -> BackendSpec:
    """Rebuild a spec from ``BackendSpec.record()`` (inside a container)."""
    return BackendSpec(
        name=record["name"],
        section=_import(record["section"]),
        engine=record["engine"],
        devices=frozenset(record.get("devices", COMMON_DEVICES)),
        precisions=frozenset(record.get("precisions", COMMON_PRECISIONS)),
        lora=bool(record.get("lora", False)),
        server=record.get("server"),
    )


class BackendRegistry:
    """The backends of a session, by name, in registration order."""

    def __init__(self, specs: Iterable[BackendSpec]) -> None:
        self._specs: dict[str, BackendSpec] = {}
        for spec in specs:
            known = self._specs.get(spec.name)
            if known is not None and known != spec:
                raise ValueError(f"backend {spec.name!r} is registered twice, differently")
            self._specs[spec.name] = spec

    @property
    def names(self) -> tuple[str, ...]:
        """Registered backend names."""
        return tuple(self._specs)

    @property
    def default(self) -> str:
        """The backend of a study that names none: the first registered."""
        if not self._specs:
            raise KeyError("no backend is registered")
        return next(iter(self._specs))

    @property
    def devices(self) -> frozenset[str]:
        """Every device some backend accepts."""
        return frozenset().union(*(spec.devices for spec in self))

    @property
    def precisions(self) -> frozenset[str]:
        """Every precision some backend accepts."""
        return frozenset().union(*(spec.precisions for spec in self))

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[BackendSpec]:
        return iter(self._specs.values())

    def get(self, name: str) -> BackendSpec:
        """The spec of ``name``.

        Raises:
            KeyError: naming the registered backends.
        """
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown backend {name!r}; registered: {list(self._specs)}") from None

    def with_specs(self, specs: Iterable[BackendSpec]) -> BackendRegistry:
        """This registry plus ``specs``."""
        return BackendRegistry([*self._specs.values(), *specs])
