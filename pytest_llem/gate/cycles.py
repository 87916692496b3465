"""Per-cycle metric dicts into per-metric samples (what the gate and the reports summarise)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def collect(metric_dicts: Sequence[Mapping[str, float | None]]) -> dict[str, list[float]]:
    """Turn per-cycle metric dicts into per-metric sample lists (None values dropped)."""
    samples: dict[str, list[float]] = {}
    for metrics in metric_dicts:
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                samples.setdefault(name, []).append(float(value))
    return samples
