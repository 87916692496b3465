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
from pytest_llem.stats.power import cycles_needed
from pytest_llem.stats.significance import one_sided_p
from pytest_llem.study.sections import SignificanceConfig

Outcome = Literal["pass", "fail", "inconclusive"]


@dataclass(frozen=True)
class Decision:
    """What the two tests against the limit say, with the evidence."""

    outcome: Outcome
    p_beyond: float | None  # one-sided p that the change is beyond the limit
    p_within: float | None  # one-sided p that the change is within the limit
    cv_current: float | None
    cv_baseline: float | None
    cycles_needed: int | None  # per side, at the observed noise; None when unknown
    reason: str


def _scale(limit: float, better: str) -> float:
    """Baseline multiplier at the limit: 1.05 for 5% more joules, 0.95 for 5% fewer tok/s."""
    return 1.0 + limit if better == "lower" else 1.0 - limit


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
    noise = {"cv_current": abs_cv(current), "cv_baseline": abs_cv(baseline)}
    scale = _scale(limit, better)
    if scale <= 0:
        return Decision("pass", None, 0.0, **noise, cycles_needed=None, reason="limit >= 100%")
    n_c, n_b = len(current), len(baseline)
    sign = 1.0 if better == "lower" else -1.0  # badness = sign * value
    positive = min(current) > 0 and min(baseline) > 0
    if positive:
        cur = [sign * math.log(v) for v in current]
        edge = [sign * (math.log(v) + math.log(scale)) for v in baseline]
    else:
        cur = [sign * v for v in current]
        edge = [sign * v * scale for v in baseline]
    distance = mean(cur) - mean(edge)  # > 0: the estimate is beyond the limit

    def needed() -> int | None:  # only for inconclusive verdicts: it costs a few quantiles
        if n_c < 2 or n_b < 2:
            return sig.min_cycles
        return cycles_needed(
            abs(distance), stdev(cur), stdev(edge), sig.alpha, sig.test, sig.min_cycles
        )

    if n_c < sig.min_cycles or n_b < sig.min_cycles:
        return Decision(
            "inconclusive",
            None,
            None,
            **noise,
            cycles_needed=needed(),
            reason=f"too few cycles to test (n={n_c}/{n_b} < {sig.min_cycles})",
        )
    p_beyond = one_sided_p(sig.test, cur, edge)
    p_within = one_sided_p(sig.test, edge, cur)
    if p_beyond < fail_alpha:
        outcome: Outcome = "fail"
        level = f"{fail_alpha:.3g}" + (
            f" (alpha {sig.alpha:g} / {tests} tests)" if fail_alpha < sig.alpha else ""
        )
        reason = f"{sig.test} p={p_beyond:.3g} < {level}: significantly beyond the limit"
    elif p_within < sig.alpha:
        outcome = "pass"
        reason = f"{sig.test} p={p_within:.3g} < {sig.alpha:g}: significantly within the limit"
    else:
        outcome = "inconclusive"
        # Worded by the arithmetic means the report shows (the test uses geometric ones).
        beyond = sign * (mean(current) - scale * mean(baseline)) > 0
        p = p_beyond if beyond else p_within
        threshold = fail_alpha if beyond else sig.alpha
        reason = (
            f"{'beyond' if beyond else 'within'} the limit but not significantly: "
            f"{sig.test} p={p:.3g}, alpha {threshold:.3g}"
        )
    return Decision(
        outcome,
        p_beyond,
        p_within,
        **noise,
        cycles_needed=needed() if outcome == "inconclusive" else None,
        reason=reason,
    )
