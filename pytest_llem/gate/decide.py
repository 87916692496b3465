"""Three verdicts for one relative limit: pass, fail or inconclusive (pure).

A relative limit says "current may be at most L worse than the baseline". Both sides are
samples (one value per cycle), so the gate runs two one-sided tests against the limit itself,
as an equivalence (bioequivalence-style) test does:

- **fail**: the change is significantly *beyond* the limit (H0: within it, rejected at alpha);
- **pass**: the change is significantly *within* the limit (H0: beyond it, rejected at alpha);
- **inconclusive**: neither, or too few cycles on a side to test at all.

For Welch's test this is the same as "the (1 - 2 alpha) confidence interval of the change lies
entirely beyond / entirely within the limit / straddles it". Samples are compared on the log
scale (ratio of geometric means), as ratio limits are in bioequivalence: noise on a busy machine
is multiplicative (a load spike halves throughput), and a 5% limit is a ratio, so "5% worse"
means the same whatever the level. Non-positive values fall back to raw values with the
baseline scaled by the limit. Both tests hold their error rate at alpha where the change sits
exactly on the limit, and far below it elsewhere (benchmarks/perf/README.md has the figures).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pytest_llem.stats.descriptive import abs_cv, mean, stdev
from pytest_llem.stats.interval import shift_interval
from pytest_llem.stats.power import cycles_needed
from pytest_llem.stats.significance import one_sided_p
from pytest_llem.study.sections import SignificanceConfig

Outcome = Literal["pass", "fail", "inconclusive"]
Side = Literal["beyond", "within"]


@dataclass(frozen=True)
class Decision:
    """What the two tests against the limit say, with the evidence.

    ``p_value`` is the one p-value the verdict rests on: the "beyond" test's for a fail, the
    "within" test's for a pass, and for an inconclusive verdict the test on the side the
    estimate lies (``side``). ``ratio`` and ``ratio_ci`` are current / baseline (geometric
    means) and the interval that inverts both tests, so a pass never sits beside an interval
    that crosses the limit.
    """

    outcome: Outcome
    p_value: float | None
    side: Side | None
    cv_current: float | None
    cv_baseline: float | None
    cycles_needed: int | None  # per side, at the observed noise; None when unknown
    reason: str
    ratio: float | None = None
    ratio_ci: tuple[float, float] | None = None
    geomean_current: float | None = None
    geomean_baseline: float | None = None


def _scale(limit: float, better: str) -> float:
    """Baseline multiplier at the limit: 1.05 for 5% more joules, 0.95 for 5% fewer tok/s."""
    return 1.0 + limit if better == "lower" else 1.0 - limit


def log_bound(limit: float, better: str) -> float:
    """The limit as a log ratio in the bad direction (> 0): log 1.05 for 5% more joules,
    -log 0.95 for 5% fewer tokens/s."""
    return math.log(_scale(limit, better)) * (1.0 if better == "lower" else -1.0)


def cycles_to_decide(
    distance: float,
    sd_current: float,
    sd_baseline: float,
    sig: SignificanceConfig,
    tests: int = 1,
) -> int | None:
    """How many cycles per side would decide a change ``distance`` from the limit.

    The one formula behind every "N cycles would decide it": the plan header (before a run,
    at the baseline's noise, assuming nothing changed) and an inconclusive verdict (at the
    observed change and noise). ``distance`` is on the log scale in the bad direction: > 0
    beyond the limit (decided by the corrected "beyond" test), < 0 within it (the "within"
    test at alpha).
    """
    alpha = sig.fail_alpha(tests) if distance > 0 else sig.alpha
    return cycles_needed(abs(distance), sd_current, sd_baseline, alpha, sig.test, sig.min_cycles)


def _geomean(values: Sequence[float]) -> float:
    return math.exp(mean([math.log(v) for v in values]))


def decide(
    current: Sequence[float],
    baseline: Sequence[float],
    limit: float,
    better: str,
    sig: SignificanceConfig,
    tests: int = 1,
) -> Decision:
    """Pass, fail or inconclusive for a relative limit (a fraction) on one metric.

    ``tests``: the study's number of relative tests; the "beyond the limit" test runs at
    ``sig.fail_alpha(tests)`` (Bonferroni), the "within the limit" test at alpha (a study
    passes only when every test passes, so that side needs no correction).
    """
    fail_alpha = sig.fail_alpha(tests)
    cv_c, cv_b = abs_cv(current), abs_cv(baseline)
    scale = _scale(limit, better)
    if scale <= 0:
        return Decision("pass", None, None, cv_c, cv_b, None, reason="limit >= 100%")
    n_c, n_b = len(current), len(baseline)
    sign = 1.0 if better == "lower" else -1.0  # badness = sign * value
    positive = min(current) > 0 and min(baseline) > 0
    if positive:
        cur = [sign * math.log(v) for v in current]
        base = [sign * math.log(v) for v in baseline]
        edge = [b + log_bound(limit, better) for b in base]
        geo_c, geo_b = _geomean(current), _geomean(baseline)
        ratio: float | None = geo_c / geo_b
    else:  # a zero (0 J): raw values, the baseline scaled by the limit
        cur = [sign * v for v in current]
        edge = [sign * v * scale for v in baseline]
        base, geo_c, geo_b, ratio = edge, mean(current), mean(baseline), None
    distance = mean(cur) - mean(edge)  # > 0: the estimate is beyond the limit
    side: Side = "beyond" if distance > 0 else "within"

    def needed() -> int | None:  # only for inconclusive verdicts: it costs a few quantiles
        if n_c < 2 or n_b < 2:
            return sig.min_cycles
        return cycles_to_decide(distance, stdev(cur), stdev(edge), sig, tests)

    if n_c < sig.min_cycles or n_b < sig.min_cycles:
        return Decision(
            "inconclusive",
            None,
            None,
            cv_c,
            cv_b,
            needed(),
            f"too few cycles to test (n={n_c}/{n_b} < {sig.min_cycles})",
            ratio,
            None,
            geo_c,
            geo_b,
        )
    ratio_ci = None
    if positive:
        lo, hi = shift_interval(sig.test, cur, base, fail_alpha, sig.alpha)
        # Back from the bad direction to current / baseline.
        ends = sorted((_exp(sign * lo), _exp(sign * hi)))
        ratio_ci = (ends[0], ends[1])
    p_beyond = one_sided_p(sig.test, cur, edge)
    p_within = one_sided_p(sig.test, edge, cur)
    if p_beyond < fail_alpha:
        outcome: Outcome = "fail"
        p, side = p_beyond, "beyond"
        level = f"{fail_alpha:.3g}" + (
            f" (alpha {sig.alpha:g} / {tests} tests)" if fail_alpha < sig.alpha else ""
        )
        reason = f"{sig.test} p={p:.3g} < {level}: significantly beyond the limit"
    elif p_within < sig.alpha:
        outcome, p, side = "pass", p_within, "within"
        reason = f"{sig.test} p={p:.3g} < {sig.alpha:g}: significantly within the limit"
    else:
        outcome = "inconclusive"
        p = p_beyond if side == "beyond" else p_within
        threshold = fail_alpha if side == "beyond" else sig.alpha
        reason = (
            f"{side} the limit but not significantly: {sig.test} p={p:.3g}, alpha {threshold:.3g}"
        )
    return Decision(
        outcome,
        p,
        side,
        cv_c,
        cv_b,
        needed() if outcome == "inconclusive" else None,
        reason,
        ratio,
        ratio_ci,
        geo_c,
        geo_b,
    )


def _exp(x: float) -> float:
    return math.exp(x) if math.isfinite(x) else (0.0 if x < 0 else math.inf)
