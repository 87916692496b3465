"""Gate sample bookkeeping: one sample per cycle (a rerun never replaces it), the decision once
every cycle has been measured in whatever order the cycles ran, and never on part of them."""

from __future__ import annotations

from pytest_llem.gate.apply import Gate
from pytest_llem.gate.baseline_file import BaselineEntry, BaselineFile
from pytest_llem.gate.completeness import NOT_SELECTED
from pytest_llem.gate.thresholds import parse_fail_on
from pytest_llem.study.sections import GateConfig


def test_a_rerun_of_a_cycle_keeps_its_first_sample() -> None:
    gate = Gate()
    gate.record("h", {"output_tokens_per_s": 10.0}, cycle=1)
    _, repeated = gate.record("h", {"output_tokens_per_s": 11.0}, cycle=1)  # rerun of cycle 1
    history, again = gate.record("h", {"output_tokens_per_s": 12.0}, cycle=2)
    assert repeated and not again
    assert history == [{"output_tokens_per_s": 10.0}, {"output_tokens_per_s": 12.0}]


def test_without_a_cycle_every_call_is_a_new_sample() -> None:
    gate = Gate()
    gate.record("h", {"x": 1.0})
    assert len(gate.record("h", {"x": 1.0})[0]) == 2  # as merge re-gates stored cycles


def test_the_decision_comes_when_all_cycles_ran_in_any_order() -> None:
    gate = Gate()
    order = [3, 1, 2]  # what pytest-randomly can do to one config's cycles
    finals = []
    for cycle in order:
        finals.append(gate.completes("h", cycle, 3))
        gate.record("h", {"x": float(cycle)}, cycle=cycle)
    assert finals == [False, False, True]
    assert gate.completes("h", 2, 3)  # a rerun of the last cycle decides again


def test_a_rerun_never_redraws_a_cycles_sample() -> None:
    gate = Gate(cli=parse_fail_on("output_tokens_per_s>1", source="cli"))
    study = GateConfig()
    gate.judge(study, "h", "cpu", {"output_tokens_per_s": 100.0}, final=False, cycle=1)
    gate.judge(study, "h", "cpu", {"output_tokens_per_s": 2.0}, final=False, cycle=2)
    verdict, stats = gate.judge(
        study, "h", "cpu", {"output_tokens_per_s": 4.0}, final=True, cycle=2
    )  # cycle 2 again (pytest-rerunfailures): its first sample, 2.0, stands
    assert verdict is not None and stats is not None
    assert stats["output_tokens_per_s"]["n"] == 2.0
    assert stats["output_tokens_per_s"]["mean"] == 51.0
    assert "cycle 2 was measured again (a rerun): the gate keeps its first sample" in verdict.note


def test_a_deselected_cycle_makes_every_item_of_its_config_inconclusive() -> None:
    baseline = BaselineFile(
        name="main",
        created_at="now",
        entries=[
            BaselineEntry(
                config_hash="h",
                hardware="cpu",
                point_id="p",
                study="s",
                samples={"output_tokens_per_s": [100.0, 100.0, 100.0]},
            )
        ],
    )
    gate = Gate(cli=parse_fail_on("output_tokens_per_s>5%", source="cli"), baseline=baseline)
    gate.ledger.expect("s1:h", 3, [1, 2])  # -k "not c3"
    kwargs = {"n_cycles": 3, "study_hash": "s1"}
    first, _ = gate.judge(
        GateConfig(), "h", "cpu", {"output_tokens_per_s": 10.0}, cycle=1, **kwargs
    )
    assert first is not None and first.status == "inconclusive" and first.failed
    comp = first.comparisons[0]
    assert comp.missing_cycles == {3: NOT_SELECTED} and "c3 not selected" in comp.note


def test_the_last_item_of_a_config_with_a_lost_cycle_is_inconclusive() -> None:
    gate = Gate(cli=parse_fail_on("output_tokens_per_s>5%", source="cli"), baseline=_baseline())
    gate.ledger.expect("s1:h", 3, [1, 2, 3])
    kwargs = {"n_cycles": 3, "study_hash": "s1"}
    v1, _ = gate.judge(GateConfig(), "h", "cpu", {"output_tokens_per_s": 10.0}, cycle=1, **kwargs)
    assert v1 is not None and v1.status == "pending"  # cycles 2 and 3 still to come
    gate.ledger.lose("s1:h", 2, "failed: boom")
    v3, _ = gate.judge(GateConfig(), "h", "cpu", {"output_tokens_per_s": 10.0}, cycle=3, **kwargs)
    assert v3 is not None and v3.status == "inconclusive"
    assert v3.comparisons[0].missing_cycles == {2: "failed: boom"}


def _baseline() -> BaselineFile:
    entry = BaselineEntry(
        config_hash="h",
        hardware="cpu",
        point_id="p",
        study="s",
        samples={"output_tokens_per_s": [100.0, 100.0, 100.0]},
    )
    return BaselineFile(name="main", created_at="now", entries=[entry])
