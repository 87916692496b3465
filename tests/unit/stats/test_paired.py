"""Paired tests on log ratios: the exact sign-flip test, its inverted interval, the t fallback."""

from __future__ import annotations

import math
import random

import pytest

from pytest_llem.stats.paired import (
    choose_test,
    paired,
    pairs_needed,
    signflip_greater,
    signflip_interval,
)


def test_signflip_p_counts_sign_assignments() -> None:
    # All positive: only the observed assignment (and none larger) reaches the observed sum.
    assert signflip_greater([1.0, 2.0, 3.0]) == pytest.approx(1 / 8)
    assert signflip_greater([-1.0, -2.0, -3.0]) == 1.0
    assert signflip_greater([]) == 1.0


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("n", [5, 6, 8])
def test_the_interval_is_exactly_the_shifts_the_test_cannot_reject(seed: int, n: int) -> None:
    """Brute force against the test itself: just outside each end the one-sided test rejects
    at alpha, just inside it does not (Hartigan's subset means, checked, not trusted)."""
    rng = random.Random(seed)
    values = [rng.gauss(0.0, 0.1) + (rng.random() < 0.2) * rng.uniform(-1, 1) for _ in range(n)]
    alpha = 0.05
    lo, hi = signflip_interval(values, alpha)
    eps = 1e-9
    assert signflip_greater([v - (lo - eps) for v in values]) < alpha
    assert signflip_greater([v - (lo + eps) for v in values]) >= alpha
    assert signflip_greater([(hi + eps) - v for v in values]) < alpha
    assert signflip_greater([(hi - eps) - v for v in values]) >= alpha
    assert lo <= sum(values) / n <= hi


def test_the_interval_is_unbounded_where_the_level_is_out_of_reach() -> None:
    assert signflip_interval([0.1, 0.2, 0.3, 0.4], 0.05) == (-math.inf, math.inf)  # 2^-4 > 0.05
    assert signflip_interval([0.1, 0.2, 0.3, 0.4, 0.5], 0.05) == (0.1, 0.5)  # min and max


def test_auto_picks_signflip_where_it_can_reach_the_level() -> None:
    assert choose_test(4, 0.05) == "t"
    assert choose_test(5, 0.05) == "signflip"
    assert choose_test(5, 0.025) == "t"  # a Bonferroni-corrected level needs more pairs
    assert choose_test(17, 0.05) == "t"
    assert choose_test(8, 0.05, "t") == "t"


TPS_BOUND = -math.log1p(-0.25)  # tokens/s (higher is better) may fall by 25%: ratio 0.75


@pytest.mark.parametrize("seed", range(30))
def test_within_the_limit_exactly_when_the_interval_is(seed: int) -> None:
    """The reported interval and the verdict never disagree: the candidate is significantly
    within the limit iff the whole interval is on the good side of it."""
    rng = random.Random(seed)
    # Quiet pairs plus a quarter straddling a load switch, in either direction: the heavy
    # tails on which a t interval and the exact test part ways.
    logs = [
        rng.gauss(0.0, 0.05) + (rng.random() < 0.25) * rng.choice([-1, 1]) * rng.uniform(0.3, 1.2)
        for _ in range(8)
    ]
    result = paired(logs, TPS_BOUND, -1.0, 0.05, 0.05)
    assert result.test == "signflip"
    within = result.p_within < 0.05
    assert within == (result.ratio_ci[0] > 1 - 0.25), (logs, result)


def test_one_straddled_pair_no_longer_passes_beside_an_interval_across_the_limit() -> None:
    """Six quiet A/A pairs and two hit by a load switch: the sign-flip test shows the candidate
    within 25% (p = 12/256), and the interval says so too. The t interval reported before this
    reached below 0.75 on the same data, beside a pass."""
    logs = [-0.497, -0.093, 0.091, -0.001, 0.028, 0.051, 0.024, -0.547]
    result = paired(logs, TPS_BOUND, -1.0, 0.05, 0.05)
    assert result.p_within == pytest.approx(12 / 256)
    assert result.ratio_ci[0] > 0.75


def test_t_fallback_interval_is_symmetric_in_log_space() -> None:
    logs = [0.1, 0.12, 0.08, 0.11, 0.09, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]
    result = paired(logs, 0.05, 1.0, 0.05, 0.05)
    assert result.test == "t"
    lo, hi = (math.log(x) for x in result.ratio_ci)
    assert (hi + lo) / 2 == pytest.approx(sum(logs) / len(logs))
    assert result.p_beyond < 0.05  # 10% more joules against a 5% limit


def test_pairs_needed_grows_with_spread_and_is_none_on_the_bound() -> None:
    assert pairs_needed(0.0, 0.1, 0.05) is None
    few = pairs_needed(0.1, 0.05, 0.05)
    many = pairs_needed(0.1, 0.2, 0.05)
    assert few is not None and many is not None and many > few
