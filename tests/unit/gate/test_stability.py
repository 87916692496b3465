"""Unstable configs: the validity warning, the save-time refusal, the threshold's sources."""

from __future__ import annotations

from pytest_llem.gate.apply import Gate
from pytest_llem.gate.baseline_file import BaselineEntry
from pytest_llem.gate.stability import Rule, max_cv_of, refusals, unstable
from pytest_llem.gate.thresholds import parse_fail_on
from pytest_llem.study.sections import GateConfig


def stats(cv: float, n: float = 3.0) -> dict[str, dict[str, float]]:
    return {"output_tokens_per_s": {"n": n, "cv": cv}, "latency_p50_s": {"n": n, "cv": 0.9}}


def test_threshold_precedence_ini_then_study_then_five_percent() -> None:
    assert max_cv_of(GateConfig(), None) == 0.05
    assert max_cv_of(GateConfig(max_cv="10%"), None) == 0.1
    assert max_cv_of(GateConfig(max_cv="10%"), 0.2) == 0.2


def test_only_gated_metrics_with_two_or_more_cycles_count() -> None:
    rule = Rule(0.05, ("output_tokens_per_s",))
    assert unstable(stats(0.6), rule) == {"output_tokens_per_s": 0.6}
    assert unstable(stats(0.01), rule) == {}
    assert unstable(stats(0.6, n=1), rule) == {}  # one cycle: no spread to judge


def test_gate_warns_at_the_last_cycle_on_the_default_metrics() -> None:
    gate = Gate()
    warning = gate.unstable_warning(GateConfig(), stats(0.6))
    assert warning is not None and warning.code == "unstable_cycles"
    assert "output_tokens_per_s CV 60.0%" in warning.message
    assert gate.unstable_warning(GateConfig(), None) is None  # not the last cycle
    custom = Gate(cli=parse_fail_on("latency_p50_s>5%"))
    warned = custom.unstable_warning(GateConfig(), stats(0.6))
    assert warned is not None and "latency_p50_s" in warned.message


def test_refusals_name_the_config_and_its_cv() -> None:
    entry = BaselineEntry(
        config_hash="c1",
        hardware="cpu",
        point_id="pytorch-bs1",
        study="gate",
        samples={"output_tokens_per_s": [27.9, 6.6, 20.8]},
        cv={"output_tokens_per_s": 0.6},
    )
    lines = refusals([entry], {"c1": Rule(0.05, ("output_tokens_per_s",))})
    assert lines == ["gate::pytorch-bs1: output_tokens_per_s CV 60.0% (> 5%)"]
    assert refusals([entry], {"c1": Rule(0.7, ("output_tokens_per_s",))}) == []
