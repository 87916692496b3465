"""Paired verdicts on A/B cycles: pass, fail and inconclusive, and never a pass on
incomplete pairs."""

from __future__ import annotations

import pytest

from pytest_llem.gate.paired import paired_comparison
from pytest_llem.gate.thresholds import parse_fail_on
from pytest_llem.study.sections import SignificanceConfig

SIG = SignificanceConfig()
TPS = parse_fail_on("output_tokens_per_s>10%")[0]  # higher is better
JOULES = parse_fail_on("energy_per_output_token_j>5%")[0]  # lower is better

REFERENCE = [100.0, 80.0, 120.0, 60.0, 110.0, 90.0, 70.0, 130.0]  # drifting by +-40%


def _scaled(factor: float, wobble: float = 0.01) -> list[float]:
    return [r * factor * (1 + wobble * (-1) ** i) for i, r in enumerate(REFERENCE)]


def test_drift_cancels_within_pairs_so_an_unchanged_candidate_passes() -> None:
    comp = paired_comparison(TPS, REFERENCE, _scaled(1.0), True, SIG, {})
    assert comp.status == "pass", comp.note
    assert comp.kind == "paired" and comp.test == "signflip"
    assert comp.ci is not None and comp.ci[0] > 0.9  # the interval agrees with the verdict


def test_a_slower_candidate_fails_through_the_drift() -> None:
    comp = paired_comparison(TPS, REFERENCE, _scaled(0.5), True, SIG, {})
    assert comp.status == "fail", comp.note
    assert comp.ratio == pytest.approx(0.5, rel=0.02)
    assert comp.delta_pct == pytest.approx(-50, abs=2)


def test_direction_follows_the_metric() -> None:
    """Fewer joules is better: a candidate using half the energy passes a joules limit."""
    assert paired_comparison(JOULES, REFERENCE, _scaled(0.5), True, SIG, {}).status == "pass"
    assert paired_comparison(JOULES, REFERENCE, _scaled(1.5), True, SIG, {}).status == "fail"


def test_on_the_limit_it_is_inconclusive_and_says_how_many_pairs_would_decide() -> None:
    comp = paired_comparison(TPS, REFERENCE, _scaled(0.9, wobble=0.05), True, SIG, {})
    assert comp.status == "inconclusive"
    assert "not significantly" in (comp.note or "")
    assert comp.cycles_needed is None or comp.cycles_needed > len(REFERENCE)


def test_a_missing_pair_is_never_a_pass() -> None:
    comp = paired_comparison(
        TPS, REFERENCE[:7], _scaled(1.0)[:7], True, SIG, {8: "failed: the candidate timed out"}
    )
    assert comp.status == "inconclusive"
    assert comp.missing_cycles == {8: "failed: the candidate timed out"}
    assert "timed out" in (comp.note or "")


def test_too_few_pairs_and_not_yet_final() -> None:
    few = paired_comparison(TPS, REFERENCE[:2], _scaled(1.0)[:2], True, SIG, {})
    assert few.status == "inconclusive" and few.cycles_needed == SIG.min_cycles
    pending = paired_comparison(TPS, REFERENCE[:3], _scaled(1.0)[:3], False, SIG, {})
    assert pending.status == "pending"


def test_a_ratio_of_a_zero_is_not_evaluated() -> None:
    comp = paired_comparison(TPS, [0.0, *REFERENCE[1:]], _scaled(1.0), True, SIG, {})
    assert comp.status == "not_evaluated"
    assert "positive" in (comp.note or "")


def test_bonferroni_makes_failing_harder_not_passing() -> None:
    """With 20 tests the 'beyond' test runs at 0.0025: five pairs cannot reach it (2^-5), so
    the t test decides; the pass side keeps alpha."""
    five_ref, five_cand = REFERENCE[:5], _scaled(0.5)[:5]
    alone = paired_comparison(TPS, five_ref, five_cand, True, SIG, {}, tests=1)
    family = paired_comparison(TPS, five_ref, five_cand, True, SIG, {}, tests=20)
    assert alone.test == "signflip" and family.test == "t"
    assert alone.status == "fail"
