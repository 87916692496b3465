"""Cross-cycle statistics of one configuration: n, mean, std, CV and a bootstrap CI."""

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
