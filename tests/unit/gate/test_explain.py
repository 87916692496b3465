"""The words of a failed or inconclusive verdict: heading, evidence, fix."""

from __future__ import annotations

from pytest_llem.gate.explain import fix, headline
from pytest_llem.gate.thresholds import parse_fail_on
from pytest_llem.gate.verdict import evaluate
from pytest_llem.study.sections import SignificanceConfig

TPS = parse_fail_on("output_tokens_per_s>5%")


def judge(current: list[float], baseline: list[float]):  # type: ignore[no-untyped-def]
    samples = {"output_tokens_per_s": current}
    return evaluate(TPS, {}, samples, {"output_tokens_per_s": baseline}, True, SignificanceConfig())


def test_noisy_baseline_asks_for_a_quiet_re_save() -> None:
    v = judge([20.0, 20.1, 19.9], [15.0, 40.0, 25.0])
    assert v.status == "inconclusive"
    assert "inconclusive for p (cycle 3)" in headline("p", 3, v)
    assert fix(v).startswith("re-save the baseline on a quiet machine")
    assert "--llem-inconclusive warn" in fix(v)


def test_noisy_current_asks_for_more_cycles() -> None:
    v = judge([20.0, 45.0, 30.0], [25.0, 25.1, 24.9])
    assert v.status == "inconclusive"
    assert fix(v).startswith("re-run with more cycles (execution.n_cycles: ")


def test_a_failure_keeps_its_old_words() -> None:
    v = judge([10.0, 10.1, 9.9], [25.0, 25.1, 24.9])
    assert headline("p", 3, v) == "regression gate failed for p (cycle 3):"
    assert fix(v).startswith("investigate the regression")
