"""Gate configurations that could never fail are refused with the reason."""

from __future__ import annotations

from pytest_llem.gate.feasibility import problems
from pytest_llem.gate.thresholds import parse_fail_on
from pytest_llem.study.sections import GateConfig, SignificanceConfig

TPS = parse_fail_on("output_tokens_per_s>5%")


def test_mannwhitney_with_three_cycles_can_never_fail() -> None:
    gate = GateConfig(significance=SignificanceConfig(test="mannwhitney"))
    (problem,) = problems(gate, 3, TPS)
    assert "smallest one-sided p is 0.05" in problem and "at least 4 cycles" in problem
    assert problems(gate, 4, TPS) == []


def test_min_cycles_above_n_cycles() -> None:
    (problem,) = problems(GateConfig(), 1, TPS)
    assert "n_cycles is 1 but gate.significance.min_cycles is 3" in problem
    assert problems(GateConfig(), 3, TPS) == []


def test_budgets_alone_and_impossible_limits() -> None:
    assert problems(GateConfig(), 1, parse_fail_on("latency_p99_s<2")) == []
    (problem,) = problems(GateConfig(), 3, parse_fail_on("output_tokens_per_s>100%"))
    assert "cannot fall by 100% or more" in problem
