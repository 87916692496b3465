"""Backend name -> engine module, imported on first use so collection never imports torch."""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any

from pytest_llem.engines.base import Engine
from pytest_llem.study.model import ExperimentConfig

_MODULES: dict[str, tuple[str, str]] = {
    "pytorch": ("pytest_llem.engines.transformers", "TransformersEngine"),
    "vllm": ("pytest_llem.engines.vllm", "VLLMEngine"),
}


def _module(backend: str) -> Any:
    return importlib.import_module(_MODULES[backend][0])


def load_key(config: ExperimentConfig) -> str:
    """The cache key of the loaded model for this config (backend-specific)."""
    return f"{config.backend}:{_module(config.backend).load_key(config)}"


def load_engine(config: ExperimentConfig, base_dir: Path | None) -> Engine:
    """Load the engine for ``config.backend``."""
    module_name, class_name = _MODULES[config.backend]
    engine: Engine = getattr(importlib.import_module(module_name), class_name).load(
        config, base_dir
    )
    return engine


def preload(config: ExperimentConfig, base_dir: Path | None) -> None:
    """Import what loading ``config`` needs, so that an interrupt during the load (a per-item
    timeout) cannot leave a library half-imported for later items. Best effort."""
    hook = getattr(_module(config.backend), "preload", None)
    if hook is not None:
        hook(config, base_dir)


@functools.cache
def _environment(backend: str) -> tuple[tuple[str, Any], ...]:
    return tuple(_module(backend).environment().items())


def environment(backend: str) -> dict[str, Any]:
    """Library versions and device facts of a backend (read once per process, not per item)."""
    return dict(_environment(backend))
