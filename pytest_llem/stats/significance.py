"""Significance tests and confidence intervals, dependency-free (pure Python).

``welch`` is Welch's unequal-variance t-test; ``mannwhitney`` is the Mann-Whitney U test
(exact for small samples, ties included; normal approximation with the tie correction
otherwise). Both are one-sided:
"is the current sample worse than the baseline in the metric's bad direction?".
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from collections.abc import Sequence

from pytest_llem.stats.descriptive import mean, stdev


def _betacf(a: float, b: float, x: float) -> float:
    # Continued fraction for the incomplete beta function (Numerical Recipes, betacf).
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > 1e-300 else 1e-300
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > 1e-300 else 1e-300)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > 1e-300 else 1e-300
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-12:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    front = math.exp(lbeta + a * math.log(x) + b * math.log(1.0 - x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_sf(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return tail if t >= 0 else 1.0 - tail


def t_ppf(q: float, df: float) -> float:
    """The q-quantile of Student's t with ``df`` degrees of freedom (bisection on t_sf)."""
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be within (0, 1), got {q}")
    if q < 0.5:
        return -t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_sf(hi, df) > 1.0 - q:
        lo, hi = hi, hi * 2.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if t_sf(mid, df) > 1.0 - q else (lo, mid)
    return (lo + hi) / 2.0


def welch_greater(current: Sequence[float], baseline: Sequence[float]) -> float:
    """One-sided p-value that mean(current) > mean(baseline) (Welch's t-test)."""
    n1, n2 = len(current), len(baseline)
    v1, v2 = stdev(current) ** 2 / n1, stdev(baseline) ** 2 / n2
    diff = mean(current) - mean(baseline)
    if v1 + v2 == 0.0:
        return 0.0 if diff > 0 else 1.0
    t = diff / math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (
        (v1**2 / (n1 - 1) if n1 > 1 else 0.0) + (v2**2 / (n2 - 1) if n2 > 1 else 0.0)
    )
    return t_sf(t, df)


def _u(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Mann-Whitney U of ``xs`` over ``ys``: pairs where x wins, ties counting one half."""
    return sum(1.0 if x > y else 0.5 if x == y else 0.0 for x in xs for y in ys)


def mannwhitney_greater(current: Sequence[float], baseline: Sequence[float]) -> float:
    """One-sided p-value that current is stochastically greater than baseline.

    Exact for small samples: the share of relabellings of the pooled values whose U is at
    least the observed one, ties included (the permutation distribution conditional on the
    ties, so p never drops below 1 / C(n1 + n2, n1)). Normal approximation with the tie
    correction of the variance otherwise.
    """
    n1, n2 = len(current), len(baseline)
    u = _u(current, baseline)
    pooled = [*current, *baseline]
    n = n1 + n2
    if math.comb(n, n1) <= 20_000:
        count = total = 0
        for chosen in itertools.combinations(range(n), n1):
            picked = set(chosen)
            xs = [pooled[i] for i in chosen]
            ys = [pooled[i] for i in range(n) if i not in picked]
            total += 1
            if _u(xs, ys) >= u - 1e-9:
                count += 1
        return count / total
    ties = sum(t**3 - t for t in Counter(pooled).values())
    variance = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return 1.0
    z = (u - n1 * n2 / 2.0 - 0.5) / math.sqrt(variance)  # continuity correction
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def one_sided_p(test: str, current: Sequence[float], baseline: Sequence[float]) -> float:
    """p-value that ``current`` is greater than ``baseline`` under ``test``."""
    if test == "mannwhitney":
        return mannwhitney_greater(current, baseline)
    return welch_greater(current, baseline)


def bootstrap_ci(
    values: Sequence[float], level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean (seeded: the same data give the same interval)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (math.nan, math.nan)
    rng = random.Random(seed)
    n = len(values)
    means = sorted(mean([values[rng.randrange(n)] for _ in range(n)]) for _ in range(resamples))
    lo = means[int((1.0 - level) / 2.0 * (resamples - 1))]
    hi = means[int((1.0 + level) / 2.0 * (resamples - 1))]
    return lo, hi
