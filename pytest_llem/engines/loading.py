"""Engines by backend, through the backend registry: the engine's module is imported on first
use, so collection never imports torch or vLLM."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from pytest_llem.engines.engine import Engine
from pytest_llem.errors import Problem
from pytest_llem.study.backends import BackendRegistry, BackendSpec
from pytest_llem.study.experiment import ExperimentConfig
from pytest_llem.study.plan import StudyPlan


def load_key(config: ExperimentConfig) -> str:
    """The cache key of the loaded model for this config (backend-specific).

    An engine module without ``load_key`` reloads for any change of model, precision or device.
    """
    module = config.backend_spec.engine_module()
    own = getattr(module, "load_key", None)
    key = own(config) if own is not None else f"{config.model}|{config.precision}|{config.device}"
    return f"{config.backend}:{key}"


def load_engine(config: ExperimentConfig, base_dir: Path | None) -> Engine:
    """Load the engine for ``config.backend``."""
    engine: Engine = config.backend_spec.engine_class().load(config, base_dir)
    return engine


def preload(config: ExperimentConfig, base_dir: Path | None) -> None:
    """Import what loading ``config`` needs, so that an interrupt during the load (a per-item
    timeout) cannot leave a library half-imported for later items. Best effort."""
    hook = getattr(config.backend_spec.engine_module(), "preload", None)
    if hook is not None:
        hook(config, base_dir)


@functools.cache
def _environment(spec: BackendSpec) -> tuple[tuple[str, Any], ...]:
    own = getattr(spec.engine_module(), "environment", None)
    return tuple((own() if own is not None else {}).items())


def environment(config: ExperimentConfig) -> dict[str, Any]:
    """Library versions and device facts of a backend (read once per process, not per item)."""
    return dict(_environment(config.backend_spec))


def study_problems(plan: StudyPlan, backends: BackendRegistry) -> list[Problem]:
    """Each backend's study-wide collection checks (``BackendSpec.collect_check``), run for
    the backends the plan uses: what the installed library would refuse, before measuring."""
    used = {p.config.backend for p in plan.points if p.config is not None}
    problems: list[Problem] = []
    for spec in backends:
        check = spec.collect_checks() if spec.name in used else None
        if check is not None:
            problems.extend(check(plan))
    return problems
