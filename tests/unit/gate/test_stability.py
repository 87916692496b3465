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


def test_a_verdict_on_disturbed_cycles_says_which() -> None:
    from pytest_llem.gate.stability import DisturbedCycles

    kept = DisturbedCycles()
    assert kept.note("k", 1, []) is None
    note = kept.note("k", 2, ["host_contention 61% of 2 cores"])
    assert note is not None and "cycle 2: host_contention 61% of 2 cores" in note
    later = kept.note("k", 3, [])  # the config's later verdicts still say so
    assert later == note
    assert kept.note("other", 1, []) is None


def test_a_baseline_is_refused_for_disturbed_cycles() -> None:
    from types import SimpleNamespace

    from pytest_llem.gate.stability import disturbed_refusals
    from pytest_llem.results.records import ValidityWarning

    flag = ValidityWarning(code="host_contention", message="m", figures={"brief": "61% of 2"})
    capped = ValidityWarning(code="power_capped", message="m", figures={"brief": "sw 90%"})

    def result(cycle: int, warnings: list[ValidityWarning], **kw: object) -> SimpleNamespace:
        base = dict(study="s", point_id="p", cycle=cycle, metrics={}, outcome="passed", config={})
        return SimpleNamespace(**{**base, "warnings": warnings, **kw})

    assert disturbed_refusals([result(1, [capped]), result(2, [])]) == []
    assert disturbed_refusals([result(1, []), result(2, [flag])]) == [
        "s::p: cycle 2: host_contention 61% of 2"
    ]
    # A failed item with figures would be stored too: it counts. A skipped one does not.
    assert disturbed_refusals([result(1, [flag], outcome="failed")]) != []
    assert disturbed_refusals([result(1, [flag], outcome="skipped")]) == []
    # The config's own disturbed_by decides.
    mine = {"validity": {"disturbed_by": ["power_capped"]}}
    assert disturbed_refusals([result(1, [flag], config=mine)]) == []
    assert disturbed_refusals([result(1, [capped], config=mine)]) == [
        "s::p: cycle 1: power_capped sw 90%"
    ]
