"""Power and sample size: how many cycles decide a one-sided test, and what a test can reach.

Pure. Used by the gate (cycles that would decide an inconclusive verdict, studies refused as
undecidable) and by the plan (the smallest change a study can detect).
"""

from __future__ import annotations

import math
import statistics

from pytest_llem.stats.significance import t_ppf

POWER = 0.8  # the sample-size estimate aims at deciding 4 times out of 5
MAX_CYCLES = 1000  # beyond this the estimate is reported as "more than"


def min_mannwhitney_p(n_current: int, n_baseline: int) -> float:
    """The smallest one-sided p-value Mann-Whitney can give for these sample sizes."""
    return 1.0 / math.comb(n_current + n_baseline, n_current)


def mannwhitney_min_cycles(alpha: float) -> int:
    """Cycles per side below which Mann-Whitney can never reach ``alpha``."""
    n = 2
    while min_mannwhitney_p(n, n) >= alpha:
        n += 1
    return n


def cycles_needed(
    distance: float,
    sd_current: float,
    sd_baseline: float,
    alpha: float,
    test: str = "welch",
    min_cycles: int = 2,
) -> int | None:
    """Cycles per side at which a one-sided test at alpha decides with 80% power.

    ``distance`` is how far the estimated change sits from the limit and the sds are per
    cycle, all on the scale the test uses. Normal approximation refined once with Student's
    t at the Welch degrees of freedom of that sample size. None when the change sits on the
    limit (no sample size decides it).
    """
    var = sd_current**2 + sd_baseline**2
    if distance <= 0 or not math.isfinite(distance):
        return None
    floor = mannwhitney_min_cycles(alpha) if test == "mannwhitney" else 2
    if var == 0:
        return max(floor, min_cycles)
    z = statistics.NormalDist()
    n = (z.inv_cdf(1 - alpha) + z.inv_cdf(POWER)) ** 2 * var / distance**2
    for _ in range(2):
        m = max(2.0, math.ceil(n))
        df = var**2 * (m - 1) / (sd_current**4 + sd_baseline**4)
        n = (t_ppf(1 - alpha, df) + t_ppf(POWER, df)) ** 2 * var / distance**2
    return min(MAX_CYCLES + 1, max(floor, min_cycles, math.ceil(n)))


def min_detectable_change(
    sd: float, n_cycles: int, alpha: float, power: float = POWER
) -> float | None:
    """The smallest change (on the scale of ``sd``: log for ratios) that a one-sided
    two-sample test with ``n_cycles`` per side detects at ``alpha`` with ``power``, both sides
    as noisy as ``sd`` (the baseline's cycle-to-cycle spread). None below two cycles.

    Student's t at the pooled degrees of freedom, ``2 (n - 1)``: at 3 cycles a side the
    normal approximation would promise a third more resolution than the test has.
    """
    if n_cycles < 2 or not math.isfinite(sd):
        return None
    df = 2.0 * (n_cycles - 1)
    return (t_ppf(1 - alpha, df) + t_ppf(power, df)) * sd * math.sqrt(2.0 / n_cycles)
