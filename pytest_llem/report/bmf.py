"""Export to Bencher Metric Format (https://bencher.dev/docs/reference/bencher-metric-format/).

Also home of what every trend export shares: the session's results summarised per config
across its cycles (``per_config``), over the metrics of the catalogue (``study.metrics``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llem.gate.cycles import collect
from pytest_llem.results.records import ExperimentResult, write_json_atomic
from pytest_llem.stats.summary import summarise
from pytest_llem.study.metrics import METRICS


@dataclass(frozen=True)
class ConfigSummary:
    """One config's measured cycles and, per catalogue metric measured, their summary."""

    name: str  # "<study>/<point_id>": stable across commits, so trend lines continue
    results: tuple[ExperimentResult, ...]
    stats: dict[str, dict[str, float]]  # summarise(): n, mean, std, cv, ci95_low, ci95_high


def per_config(results: Sequence[ExperimentResult]) -> list[ConfigSummary]:
    """Results with metrics grouped per config, in first-seen order, summarised over cycles.

    Only the catalogue's metrics are kept, in its order; a metric no cycle measured (energy
    on a machine without a meter) is absent, never a zero.
    """
    groups: dict[str, list[ExperimentResult]] = {}
    for r in results:
        if r.metrics is not None:
            groups.setdefault(f"{r.study}/{r.point_id}", []).append(r)
    out = []
    for name, items in groups.items():
        stats = summarise(collect([r.metrics.model_dump() for r in items if r.metrics]))
        # JSON has no inf or NaN (JavaScript's JSON.parse refuses them): such a mean is left out.
        kept = {m: stats[m] for m in METRICS if m in stats and math.isfinite(stats[m]["mean"])}
        out.append(ConfigSummary(name, tuple(items), kept))
    return out


def measure(stats: dict[str, float]) -> dict[str, float]:
    """``value`` (the mean over cycles) and, from two cycles on, the 95% interval's bounds.

    BMF's schema types ``lower_value``/``upper_value`` as numbers, optional: one cycle has no
    interval, so its bounds are left out rather than written as null or as the value itself.
    """
    out = {"value": stats["mean"]}
    if stats["n"] >= 2:
        out["lower_value"] = stats["ci95_low"]
        out["upper_value"] = stats["ci95_high"]
    return out


def document(results: Sequence[ExperimentResult]) -> dict[str, Any]:
    """``{benchmark: {measure: {value, lower_value, upper_value}}}``; unmeasured metrics omitted."""
    return {s.name: {m: measure(st) for m, st in s.stats.items()} for s in per_config(results)}


def write(results: Sequence[ExperimentResult], path: Path) -> str:
    """Write the BMF document to ``path`` atomically; return the note for the terminal."""
    write_json_atomic(path, document(results))
    return f"Bencher Metric Format: {path}"
