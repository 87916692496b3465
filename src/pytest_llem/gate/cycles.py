"""Cross-cycle statistics of one configuration (mean, std, CV, bootstrap CI)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pytest_llem.stats.descriptive import cv, mean, stdev
from pytest_llem.stats.significance import bootstrap_ci


def summarise(samples: Mapping[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """Per metric: n, mean, std, cv, ci95_low, ci95_high (metrics with values only)."""
    out: dict[str, dict[str, float]] = {}
    for metric, values in samples.items():
        if not values:
            continue
        lo, hi = bootstrap_ci(values)
        m = mean(values)
        out[metric] = {
            "n": float(len(values)),
            "mean": m,
            "std": stdev(values),
            "cv": cv(values) if m else 0.0,
            "ci95_low": lo,
            "ci95_high": hi,
        }
    return out


def collect(metric_dicts: Sequence[Mapping[str, float | None]]) -> dict[str, list[float]]:
    """Turn per-cycle metric dicts into per-metric sample lists (None values dropped)."""
    samples: dict[str, list[float]] = {}
    for metrics in metric_dicts:
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                samples.setdefault(name, []).append(float(value))
    return samples
