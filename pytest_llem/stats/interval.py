"""The interval of a two-sample shift that is the inversion of the one-sided tests (pure).

A relative limit is judged by two one-sided tests, each at its own level (the "beyond the
limit" test at the corrected alpha, the "within the limit" test at alpha). The interval shown
beside the verdict must agree with them: its lower bound is the largest shift the "greater"
test still rejects at the first level, its upper bound the smallest shift the "less" test
rejects at the second. Then "the interval lies beyond the limit" is exactly "fail", and "it
lies within" exactly "pass", whichever test (Welch or Mann-Whitney) decided.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

from pytest_llem.stats.descriptive import mean, stdev
from pytest_llem.stats.significance import mannwhitney_greater, t_ppf


def _welch(
    x: Sequence[float], y: Sequence[float], alpha_low: float, alpha_high: float
) -> tuple[float, float]:
    n1, n2 = len(x), len(y)
    v1 = stdev(x) ** 2 / n1 if n1 > 1 else 0.0
    v2 = stdev(y) ** 2 / n2 if n2 > 1 else 0.0
    diff = mean(x) - mean(y)
    if v1 + v2 == 0.0:
        return diff, diff
    df = (v1 + v2) ** 2 / (
        (v1**2 / (n1 - 1) if n1 > 1 else 0.0) + (v2**2 / (n2 - 1) if n2 > 1 else 0.0)
    )
    se = math.sqrt(v1 + v2)
    return diff - t_ppf(1 - alpha_low, df) * se, diff + t_ppf(1 - alpha_high, df) * se


def _mannwhitney(
    x: Sequence[float], y: Sequence[float], alpha_low: float, alpha_high: float
) -> tuple[float, float]:
    # The U statistic of (x - d) over y changes only where d crosses a pairwise difference,
    # so each bound is one of them: search the sorted differences (the test's p is monotone
    # in d), evaluating between neighbours where no cross-sample tie blurs the count.
    diffs = sorted({a - b for a in x for b in y})
    between = ((a + b) / 2 for a, b in itertools.pairwise(diffs))
    mids = [diffs[0] - 1.0, *between, diffs[-1] + 1.0]

    def greater(d: float) -> float:
        return mannwhitney_greater([a - d for a in x], y)

    def less(d: float) -> float:
        return mannwhitney_greater(y, [a - d for a in x])

    # Lower bound: the largest mid whose "greater" p is below alpha_low; the bound is the
    # difference just above it (rejected up to there, not beyond).
    i = _last_true(len(mids), lambda k: greater(mids[k]) < alpha_low)
    low = -math.inf if i is None else (diffs[i] if i < len(diffs) else math.inf)
    # Upper bound: the smallest mid whose "less" p is below alpha_high (searched from the
    # top); the bound is the difference just below it.
    j = _last_true(len(mids), lambda k: less(mids[len(mids) - 1 - k]) < alpha_high)
    k = None if j is None else len(mids) - 1 - j
    high = math.inf if k is None else (diffs[k - 1] if k > 0 else -math.inf)
    return low, high


def _last_true(n: int, ok: Callable[[int], bool]) -> int | None:
    """The last index in ``range(n)`` for which the monotone (true, then false) ``ok`` holds."""
    if n == 0 or not ok(0):
        return None
    lo, hi = 0, n - 1  # ok(lo) holds
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def shift_interval(
    test: str,
    x: Sequence[float],
    y: Sequence[float],
    alpha_low: float,
    alpha_high: float,
) -> tuple[float, float]:
    """Bounds on the shift of ``x`` over ``y`` that invert the one-sided tests.

    The lower bound is where "x - d is greater than y" stops being significant at
    ``alpha_low``; the upper bound where "x - d is less than y" stops at ``alpha_high``.
    Infinite where no shift is rejected (too few samples for the level).
    """
    if not x or not y:
        return -math.inf, math.inf
    if test == "mannwhitney":
        return _mannwhitney(x, y, alpha_low, alpha_high)
    return _welch(x, y, alpha_low, alpha_high)
