"""Gate sample bookkeeping: one sample per cycle (a rerun replaces it), and the decision once
every cycle has been measured, in whatever order the cycles ran."""

from __future__ import annotations

from pytest_llem.gate.apply import Gate
from pytest_llem.gate.thresholds import parse_fail_on
from pytest_llem.study.sections import GateConfig


def test_a_rerun_of_a_cycle_replaces_its_sample() -> None:
    gate = Gate()
    gate.record("h", {"output_tokens_per_s": 10.0}, cycle=1)
    gate.record("h", {"output_tokens_per_s": 11.0}, cycle=1)  # rerun of cycle 1
    history = gate.record("h", {"output_tokens_per_s": 12.0}, cycle=2)
    assert history == [{"output_tokens_per_s": 11.0}, {"output_tokens_per_s": 12.0}]


def test_without_a_cycle_every_call_is_a_new_sample() -> None:
    gate = Gate()
    gate.record("h", {"x": 1.0})
    assert len(gate.record("h", {"x": 1.0})) == 2  # as merge re-gates stored cycles


def test_the_decision_comes_when_all_cycles_ran_in_any_order() -> None:
    gate = Gate()
    order = [3, 1, 2]  # what pytest-randomly can do to one config's cycles
    finals = []
    for cycle in order:
        finals.append(gate.completes("h", cycle, 3))
        gate.record("h", {"x": float(cycle)}, cycle=cycle)
    assert finals == [False, False, True]
    assert gate.completes("h", 2, 3)  # a rerun of the last cycle decides again


def test_judge_gives_statistics_over_the_last_attempt_of_each_cycle() -> None:
    gate = Gate(cli=parse_fail_on("output_tokens_per_s>1", source="cli"))
    study = GateConfig()
    gate.judge(study, "h", "cpu", {"output_tokens_per_s": 100.0}, final=False, cycle=1)
    gate.judge(study, "h", "cpu", {"output_tokens_per_s": 2.0}, final=False, cycle=2)
    verdict, stats = gate.judge(
        study, "h", "cpu", {"output_tokens_per_s": 4.0}, final=True, cycle=2
    )  # cycle 2 again: the rerun's figure replaces 2.0
    assert verdict is not None and stats is not None
    assert stats["output_tokens_per_s"]["n"] == 2.0
    assert stats["output_tokens_per_s"]["mean"] == 52.0
