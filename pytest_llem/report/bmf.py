"""Export to Bencher Metric Format (https://bencher.dev/docs/reference/bencher-metric-format/)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llem.gate.cycles import collect
from pytest_llem.results.records import ExperimentResult
from pytest_llem.stats.summary import summarise

MEASURES = (
    "energy_per_output_token_j",
    "energy_j",
    "output_tokens_per_s",
    "input_tokens_per_s",
    "latency_p50_s",
    "latency_p99_s",
)


def document(results: Sequence[ExperimentResult]) -> dict[str, Any]:
    """``{benchmark: {measure: {value, lower_value, upper_value}}}``; unmeasured metrics omitted."""
    groups: dict[str, list[ExperimentResult]] = {}
    for r in results:
        if r.metrics is not None:
            groups.setdefault(f"{r.study}/{r.point_id}", []).append(r)
    out: dict[str, Any] = {}
    for name, items in groups.items():
        stats = summarise(collect([r.metrics.model_dump() for r in items if r.metrics]))
        out[name] = {
            m: {"value": s["mean"], "lower_value": s["ci95_low"], "upper_value": s["ci95_high"]}
            for m, s in stats.items()
            if m in MEASURES
        }
    return out
