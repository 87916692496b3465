"""Paired tests against a limit: one log ratio per cycle (candidate / reference), both arms run
back to back on the same machine, so drift between cycles cancels within each pair.

Two one-sided tests against the limit's log bound, as the baseline gate does: "beyond" (the
mean log ratio exceeds the bound) and "within" (it stays below). With few pairs the t
approximation rests on normality that five or eight ratios cannot show, so an exact sign-flip
permutation test is used where it can reach the level asked of it: its p-values are multiples
of 2^-n, and it needs n with 2^-n below the level. Beyond 16 pairs the t approximation is good
and exact enumeration slow.

The interval reported is the one the chosen test implies, so that "pass" never sits beside an
interval that crosses the limit: for the sign-flip test its exact inversion (Hartigan 1969, the
limits are order statistics of the means of the 2^n - 1 non-empty subsets of the values), for
the t test the t interval.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_llem.stats.descriptive import mean, stdev
from pytest_llem.stats.power import POWER
from pytest_llem.stats.significance import t_ppf, t_sf

MAX_EXACT = 16  # 65 536 sign assignments


def signflip_greater(values: Sequence[float]) -> float:
    """Exact one-sided p that the mean of ``values`` is above 0 (sign-flip permutation).

    Under H0 (symmetric around 0) each value's sign is a fair coin: p is the share of the
    2^n sign assignments whose sum is at least the observed one.
    """
    n = len(values)
    if n == 0:
        return 1.0
    observed = sum(values)
    size = [abs(v) for v in values]
    tolerance = 1e-12 * max(1.0, sum(size))
    hits = sum(
        1
        for signs in itertools.product((1.0, -1.0), repeat=n)
        if sum(s * v for s, v in zip(signs, size, strict=True)) >= observed - tolerance
    )
    return float(hits) / float(2**n)


def signflip_interval(values: Sequence[float], alpha: float) -> tuple[float, float]:
    """Shifts ``d`` the sign-flip test at ``alpha`` cannot reject on either side: ``[lo, hi]``.

    ``signflip_greater([v - d for v in values])`` equals (1 + #{subsets A: mean_A <= d}) / 2^n,
    non-decreasing in ``d``; it stays below ``alpha`` while fewer than ``c`` subset means lie at
    or below ``d``, with ``c = ceil(alpha 2^n) - 1``. So ``lo`` is the c-th smallest subset
    mean and, by symmetry, ``hi`` the c-th largest. Unbounded when ``alpha`` is out of reach.
    """
    n = len(values)
    reach = math.ceil(alpha * 2**n) - 1  # subset means allowed at or below a rejected shift, + 1
    if n == 0 or reach < 1:
        return (-math.inf, math.inf)
    means = sorted(
        sum(values[i] for i in subset) / size
        for size in range(1, n + 1)
        for subset in itertools.combinations(range(n), size)
    )
    return (means[reach - 1], means[-reach])


def t_greater(values: Sequence[float]) -> float:
    """One-sided p that the mean of ``values`` is above 0 (one-sample t)."""
    n = len(values)
    sd = stdev(values) if n > 1 else 0.0
    m = mean(values)
    if sd == 0.0:
        return 0.0 if m > 0 else 1.0
    return t_sf(m / (sd / math.sqrt(n)), n - 1)


def choose_test(n: int, alpha: float, asked: str = "auto") -> str:
    """``signflip`` where it can reach ``alpha`` with ``n`` pairs (and n is small), else ``t``."""
    if asked != "auto":
        return asked
    return "signflip" if 2.0**-n < alpha and n <= MAX_EXACT else "t"


@dataclass(frozen=True)
class PairedResult:
    """The two tests against the bound, and what the pairs say."""

    test: str
    p_beyond: float
    p_within: float
    ratio: float  # geometric mean of candidate / reference
    ratio_ci: tuple[float, float]  # the (1 - 2 alpha) interval of that ratio
    pairs_cv: float | None  # spread of the pairs' ratios (sd of the log ratios)
    min_detectable_change: float | None  # relative, in the bad direction, at this n and spread


def paired(
    log_ratios: Sequence[float],
    bound: float,
    sign: float,
    alpha: float,
    fail_alpha: float,
    test: str = "auto",
) -> PairedResult:
    """Test candidate/reference log ratios against ``bound`` (the limit as a log ratio, in the
    bad direction: ``log(1.05)`` for 5% more joules).

    ``sign`` is 1 when higher values are worse (joules), -1 when lower ones are (tokens/s).
    """
    n = len(log_ratios)
    bad = [sign * r for r in log_ratios]  # > 0: the candidate is worse
    shifted = [b - bound for b in bad]
    chosen = choose_test(n, fail_alpha, test)
    greater = signflip_greater if chosen == "signflip" else t_greater
    p_beyond = greater(shifted)
    p_within = greater([-x for x in shifted])
    m = mean(log_ratios)
    sd = stdev(log_ratios) if n > 1 else 0.0
    if chosen == "signflip":
        lo, hi = signflip_interval(log_ratios, alpha)
    else:
        half = t_ppf(1 - alpha, n - 1) * sd / math.sqrt(n) if n > 1 else math.inf
        lo, hi = m - half, m + half
    mdc = None
    if n > 1:
        change = (t_ppf(1 - fail_alpha, n - 1) + t_ppf(POWER, n - 1)) * sd / math.sqrt(n)
        mdc = math.exp(change) - 1.0
    return PairedResult(
        chosen,
        p_beyond,
        p_within,
        math.exp(m),
        (_exp(lo), _exp(hi)),
        sd if n > 1 else None,
        mdc,
    )


def _exp(x: float) -> float:
    return math.exp(x) if math.isfinite(x) else (0.0 if x < 0 else math.inf)


def pairs_needed(distance: float, sd: float, alpha: float) -> int | None:
    """Pairs at which a one-sided paired test at ``alpha`` (the level of the test that would
    decide: the corrected one beyond the bound, alpha within it) decides a change
    ``distance`` (log scale) away from the bound with 80% power; None when it sits on the
    bound."""
    if distance <= 0 or not math.isfinite(distance):
        return None
    if sd == 0:
        return 2
    n = 2.0
    for _ in range(3):
        df = max(1.0, n - 1)
        n = ((t_ppf(1 - alpha, df) + t_ppf(POWER, df)) * sd / distance) ** 2
    return max(2, math.ceil(n))
