"""The ledger of cycles: which produced a sample, which were lost and why, and when a config's
last item in the session has come."""

from __future__ import annotations

from pytest_llem.gate.completeness import (
    NOT_SELECTED,
    CycleRecord,
    Ledger,
    describe,
    missing_from_records,
    outcome_reason,
)


def test_settled_waits_for_every_selected_cycle_in_any_order() -> None:
    ledger = Ledger()
    ledger.expect("k", 3, [1, 2, 3])
    assert not ledger.settled("k", 3)
    ledger.sample("k", 3)
    ledger.lose("k", 1, "skipped: no GPU")
    assert ledger.settled("k", 2)  # 2 is the last one left
    ledger.sample("k", 2)
    assert ledger.missing("k") == {1: "skipped: no GPU"}


def test_a_sample_outlives_a_later_loss_and_clears_an_earlier_one() -> None:
    ledger = Ledger()
    ledger.expect("k", 2, [1, 2])
    ledger.lose("k", 1, "failed: flaky")
    ledger.sample("k", 1)  # the rerun measured it
    ledger.lose("k", 1, "failed: gate")  # and then failed the gate: the sample stands
    ledger.sample("k", 2)
    assert ledger.missing("k") == {}


def test_unselected_cycles_are_known_before_anything_runs() -> None:
    ledger = Ledger()
    ledger.expect("k", 3, [3])  # --lf re-ran only the failed last cycle
    assert ledger.unselected("k") == {1: NOT_SELECTED, 2: NOT_SELECTED}
    assert ledger.settled("k", 3)
    assert describe(ledger.missing("k")).startswith("c1 not selected")


def test_an_unknown_config_is_never_settled_by_the_ledger() -> None:
    assert not Ledger().known("k") and Ledger().missing("k") == {}


def test_missing_from_records_names_each_cycle() -> None:
    records = [
        CycleRecord(1, "passed", True),
        CycleRecord(2, "failed", False, "Failed: Timeout >20.0s\n..."),
        CycleRecord(3, "error", False, "worker 'gw0' crashed while running it"),
        CycleRecord(4, "skipped", False, "no CUDA GPU"),
    ]
    missing = missing_from_records(5, records)
    assert missing == {
        2: "timed out",
        3: "crashed with its xdist worker",
        4: "skipped: no CUDA GPU",
        5: NOT_SELECTED,
    }
    assert missing_from_records(5, records, interrupted=True)[5].endswith("interrupted")


def test_a_rerun_that_measured_counts() -> None:
    records = [CycleRecord(1, "rerun", False, "boom"), CycleRecord(1, "passed", True)]
    assert missing_from_records(1, records) == {}


def test_reasons_are_one_short_line() -> None:
    assert outcome_reason("failed", "x" * 300).endswith("...")
    assert len(outcome_reason("failed", "x" * 300)) == 100
