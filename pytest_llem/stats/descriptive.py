"""Small, dependency-free statistics (pure: no numpy, no torch)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (raises on empty input)."""
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


def stdev(values: Sequence[float]) -> float:
    """Sample standard deviation (n-1); 0.0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))


def cv(values: Sequence[float]) -> float:
    """Coefficient of variation (stdev / mean); inf when the mean is 0."""
    m = mean(values)
    return stdev(values) / m if m else math.inf


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation, as numpy's default."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be within [0, 100], got {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def slope_per_s(times_s: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of values over time (units per second); 0.0 if undefined."""
    if len(values) < 2:
        return 0.0
    mt, mv = mean(times_s), mean(values)
    den = math.fsum((t - mt) ** 2 for t in times_s)
    if den == 0:
        return 0.0
    return math.fsum((t - mt) * (v - mv) for t, v in zip(times_s, values, strict=True)) / den


def abs_cv(values: Sequence[float]) -> float | None:
    """|CV| of a sample, None when it has fewer than two values or a zero mean."""
    if len(values) < 2 or mean(values) == 0:
        return None
    return abs(cv(values))
