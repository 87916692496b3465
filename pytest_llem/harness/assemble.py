"""Session set-up steps that plugin.py delegates to: gate, resume, shard selection."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from pytest_llem.engines.builtin import BUILTIN
from pytest_llem.gate import baseline_file
from pytest_llem.gate.apply import Gate
from pytest_llem.results import resume as resume_mod
from pytest_llem.results import shards
from pytest_llem.settings.resolve import Settings
from pytest_llem.study.backends import BackendRegistry, BackendSpec


class LlemResumeWarning(pytest.PytestWarning):
    """Something in a resumed results file could not be reused."""


def backends(results: Iterable[list[BackendSpec]]) -> BackendRegistry:
    """The session's registry from the ``pytest_llem_backends`` results, built-ins first."""
    specs = [spec for result in results for spec in result]
    for spec in specs:
        if not isinstance(spec, BackendSpec):
            raise pytest.UsageError(
                f"pytest_llem_backends returned {spec!r}; return a list of BackendSpec"
            )
    try:
        registry = BUILTIN.with_specs(specs)  # refuses a name registered twice, differently
    except ValueError as exc:
        raise pytest.UsageError(f"pytest_llem_backends: {exc}") from None
    # Without plugin backends, the built-in registry itself (and its ExperimentConfig model).
    return registry if set(registry.names) - set(BUILTIN.names) else BUILTIN


def gate(settings: Settings) -> Gate:
    """The session's gate; a bad baseline stops the session before anything is measured."""
    loaded = None
    if settings.compare:
        path = baseline_file.resolve(settings.compare, settings.baseline_dir)
        try:
            loaded = baseline_file.load(path)
        except baseline_file.BaselineError as exc:
            raise pytest.UsageError(f"--llem-compare: {exc}") from None
    return Gate(
        cli=settings.fail_on_cli,
        ini=settings.fail_on_ini,
        baseline=loaded,
        require_energy=settings.require_energy,
        require_baseline=settings.require_baseline,
        inconclusive="warn" if settings.inconclusive == "warn" else "fail",
        max_cv=settings.max_cv,
    )


def resume(config: pytest.Config, settings: Settings) -> dict[str, dict[str, Any]]:
    """Passed results of the run being resumed (warnings for unreadable lines)."""
    if settings.resume_dir is None:
        return {}
    records, problems = resume_mod.load(settings.resume_dir)
    for problem in problems:
        config.issue_config_time_warning(LlemResumeWarning(problem), stacklevel=2)
    return records


def select_shard(config: pytest.Config, settings: Settings, items: list[pytest.Item]) -> None:
    """Keep only this shard's items (``--llem-shard K/N``); deselect the others."""
    if settings.shard is None:
        return
    k, n = settings.shard
    keys = [_group_key(item) for item in items]
    chosen = shards.assign(keys, n)
    keep = [item for item, s in zip(items, chosen, strict=True) if s == k - 1]
    dropped = [item for item, s in zip(items, chosen, strict=True) if s != k - 1]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _group_key(item: pytest.Item) -> str:
    from pytest_llem.harness.collect import ExperimentItem

    if isinstance(item, ExperimentItem):
        point = item.point
        if point.pair is not None:  # both arms of an A/B pair in one shard
            return f"{item.plan.study_hash}:ab:{point.pair}"
        return f"{item.plan.study_hash}:{point.config_hash}:{point.id}"
    return item.nodeid
