"""Two one-sided tests against the limit: pass, fail, inconclusive, and the cycles needed."""

from __future__ import annotations

import random

from pytest_llem.gate.decide import decide
from pytest_llem.stats.power import cycles_needed, mannwhitney_min_cycles
from pytest_llem.study.sections import SignificanceConfig

SIG = SignificanceConfig()


def test_the_verdict_follows_the_confidence_interval_against_the_limit() -> None:
    base = [100.0, 101.0, 99.0, 100.0, 100.0]
    assert decide([99.0, 100.0, 101.0, 100.0, 99.5], base, 0.05, "higher", SIG).outcome == "pass"
    assert decide([80.0, 81.0, 79.0, 80.0, 80.5], base, 0.05, "higher", SIG).outcome == "fail"
    # Right on the limit: neither side can be shown, at any noise.
    edge = decide([95.0, 96.0, 94.0, 95.0, 95.0], base, 0.05, "higher", SIG)
    assert edge.outcome == "inconclusive" and edge.p_beyond and edge.p_within
    assert edge.p_beyond > 0.05 and edge.p_within > 0.05


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
