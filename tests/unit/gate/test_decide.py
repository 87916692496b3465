"""Two one-sided tests against the limit: pass, fail, inconclusive, and the cycles needed."""

from __future__ import annotations

import math
import random

import pytest

from pytest_llem.gate.decide import cycles_to_decide, decide
from pytest_llem.stats.power import cycles_needed, mannwhitney_min_cycles
from pytest_llem.study.sections import SignificanceConfig

SIG = SignificanceConfig()


def test_the_verdict_follows_the_confidence_interval_against_the_limit() -> None:
    base = [100.0, 101.0, 99.0, 100.0, 100.0]
    assert decide([99.0, 100.0, 101.0, 100.0, 99.5], base, 0.05, "higher", SIG).outcome == "pass"
    assert decide([80.0, 81.0, 79.0, 80.0, 80.5], base, 0.05, "higher", SIG).outcome == "fail"
    # Right on the limit: neither side can be shown, at any noise.
    edge = decide([95.0, 96.0, 94.0, 95.0, 95.0], base, 0.05, "higher", SIG)
    assert edge.outcome == "inconclusive" and edge.p_value is not None and edge.p_value > 0.05
    assert edge.ratio_ci is not None and edge.ratio_ci[0] < 0.95 < edge.ratio_ci[1]


def test_direction_follows_the_metric() -> None:
    base = [1.0, 1.01, 0.99]
    more_joules = [1.2, 1.21, 1.19]
    assert decide(more_joules, base, 0.05, "lower", SIG).outcome == "fail"
    assert decide(more_joules, base, 0.05, "higher", SIG).outcome == "pass"  # more tok/s


def test_cycles_needed_grows_with_noise_and_shrinks_with_distance() -> None:
    small = cycles_needed(0.10, 0.01, 0.01, SIG.alpha, SIG.test, SIG.min_cycles)
    noisy = cycles_needed(0.10, 0.10, 0.10, SIG.alpha, SIG.test, SIG.min_cycles)
    near = cycles_needed(0.01, 0.10, 0.10, SIG.alpha, SIG.test, SIG.min_cycles)
    assert small is not None and noisy is not None and near is not None
    assert small == 3 and small < noisy < near  # never fewer than min_cycles
    assert (
        cycles_needed(0.0, 0.1, 0.1, SIG.alpha, SIG.test, SIG.min_cycles) is None
    )  # a change on the limit is never decided


def test_the_estimate_decides_when_followed() -> None:
    # Draw with the noise the estimate saw, at the size it asked for: it should decide
    # about as often as its 80% power target says.
    rng = random.Random(3)
    cv, shift = 0.05, 0.12  # a 12% drop in throughput against a 5% limit
    first = decide(
        [rng.gauss(1 - shift, cv) for _ in range(3)],
        [rng.gauss(1, cv) for _ in range(3)],
        0.05,
        "higher",
        SIG,
    )
    n = cycles_needed(0.12 - 0.05, cv, cv, SIG.alpha, SIG.test, SIG.min_cycles) or 0
    decided = sum(
        decide(
            [rng.gauss(1 - shift, cv) for _ in range(n)],
            [rng.gauss(1, cv) for _ in range(n)],
            0.05,
            "higher",
            SIG,
        ).outcome
        == "fail"
        for _ in range(400)
    )
    assert first.outcome in ("fail", "inconclusive")
    assert decided / 400 > 0.7


def test_mannwhitney_floor_and_impossible_limits() -> None:
    assert mannwhitney_min_cycles(0.05) == 4  # 1/C(6,3) = 0.05 is not below 0.05
    assert mannwhitney_min_cycles(0.01) == 5
    mw = SignificanceConfig(test="mannwhitney")
    three = decide([1.0, 1.1, 1.2], [10.0, 10.1, 10.2], 0.05, "higher", mw)
    assert three.outcome == "inconclusive" and three.cycles_needed == 4
    assert decide([1.0] * 3, [10.0] * 3, 1.0, "higher", SIG).outcome == "pass"


def test_too_few_cycles_and_non_positive_values() -> None:
    few = decide([1.0, 1.1], [1.0, 1.0, 1.0], 0.05, "lower", SIG)
    assert few.outcome == "inconclusive" and "too few cycles" in few.reason
    zeros = decide([0.0, 0.0, 0.0], [1.0, 1.01, 0.99], 0.05, "lower", SIG)
    assert zeros.outcome == "pass"  # 0 J/token: raw values, baseline scaled by the limit


@pytest.mark.parametrize("test", ["welch", "mannwhitney"])
@pytest.mark.parametrize("better", ["lower", "higher"])
def test_one_p_value_and_an_interval_that_agrees_with_the_verdict(test: str, better: str) -> None:
    limit = 1.05 if better == "lower" else 0.95

    def beyond(ratio: float) -> bool:
        return ratio > limit if better == "lower" else ratio < limit

    # Whatever the draw: the verdict's p is the one below its level for a decided verdict,
    # and the interval lies beyond the limit exactly when it fails, within it when it passes.
    sig = SignificanceConfig(test=test)
    rng = random.Random(11)
    seen = set()
    for _ in range(150 if test == "welch" else 60):  # exact Mann-Whitney is the slow one
        shift = rng.uniform(-0.15, 0.15)
        n = rng.randint(4, 7)
        current = [math.exp(rng.gauss(shift, 0.05)) for _ in range(n)]
        baseline = [math.exp(rng.gauss(0.0, 0.05)) for _ in range(n)]
        d = decide(current, baseline, 0.05, better, sig, tests=3)
        seen.add(d.outcome)
        assert d.ratio_ci is not None and d.p_value is not None
        lo, hi = d.ratio_ci
        if d.outcome == "fail":
            assert d.side == "beyond" and d.p_value < sig.fail_alpha(3)
            assert beyond(lo) and beyond(hi)
        elif d.outcome == "pass":
            assert d.side == "within" and d.p_value < sig.alpha
            assert not beyond(lo) and not beyond(hi)
        else:
            assert beyond(lo) != beyond(hi) or lo == hi  # the interval straddles the limit
            assert d.p_value >= (sig.fail_alpha(3) if d.side == "beyond" else sig.alpha)
        assert lo <= d.ratio <= hi if d.ratio is not None else True
    assert seen == {"pass", "fail", "inconclusive"}


def test_the_plan_and_the_verdict_use_one_formula() -> None:
    # The plan header assumes no change at the baseline's noise; a verdict whose current run
    # shows no change, with the same noise on both sides, asks for the same number of cycles.
    sd = 0.04
    baseline = [math.exp(x) for x in (-sd, 0.0, sd)]
    current = list(baseline)
    verdict = decide(current, baseline, 0.02, "lower", SIG, tests=1)
    assert verdict.outcome == "inconclusive"
    from pytest_llem.gate.detectable import detectable
    from pytest_llem.gate.thresholds import parse_fail_on

    limits = parse_fail_on("energy_per_output_token_j>2%")
    plan = detectable({"energy_per_output_token_j": baseline}, limits, 3, SIG, tests=1)
    assert plan[0].cycles_to_decide == verdict.cycles_needed
    assert cycles_to_decide(-math.log(1.02), sd, sd, SIG) == verdict.cycles_needed
