"""After the run every cycle carries its config's final verdict (report/final.py)."""

from __future__ import annotations

from typing import Any

from pytest_llem.gate.settle import Unsettled, decided_pairs
from pytest_llem.report.final import finalize
from pytest_llem.results.records import ExperimentResult


def comparison(status: str, kind: str = "relative", **extra: Any) -> dict[str, Any]:
    return {"metric": "energy_j", "limit": "5% worse", "kind": kind, "status": status, **extra}


def item(cycle: int, gate: dict[str, Any] | None, pair: str | None = None) -> ExperimentResult:
    arm = None if pair is None else ("reference" if cycle % 2 else "candidate")
    return ExperimentResult(
        nodeid=f"study_s.yaml::p-c{cycle}",
        outcome="passed",
        study="s",
        study_hash="h",
        point_id="p",
        config_hash="c" if pair is None else f"c-{arm}",
        cycle=cycle,
        config={},
        gate=gate,
        pair=pair,
        arm=arm,
    )


def test_pending_cycles_take_the_deciding_items_comparisons() -> None:
    budget = {"metric": "latency_p99_s", "limit": "< 2", "kind": "ceiling", "status": "pass"}
    pending = {"status": "pending", "comparisons": [comparison("pending"), budget]}
    decided = {"status": "fail", "comparisons": [comparison("fail", delta_pct=9.0), budget]}
    results = [item(1, pending), item(2, pending), item(3, decided)]
    final = finalize(results)
    assert [r.gate["status"] for r in final if r.gate] == ["fail", "fail", "fail"]
    assert final[0].gate is not None and final[0].gate["decided_by"] == "study_s.yaml::p-c3"
    assert final[0].gate["comparisons"][1] == budget  # an item's own budget stays its own
    assert "decided_by" not in (final[2].gate or {})
    assert results[0].gate == pending  # the inputs (what the JSONL logged) are untouched


def test_an_unsettled_config_reads_inconclusive_with_what_is_missing() -> None:
    pending = {"status": "pending", "comparisons": [comparison("pending")]}
    entry = Unsettled("s", "h", "p", "c", "study_s.yaml::p[gate]", None, None, {3: "failed: boom"})
    final = finalize([item(1, pending), item(2, pending)], unsettled=[entry])
    assert {r.gate["status"] for r in final if r.gate} == {"inconclusive"}
    assert final[0].gate is not None and final[0].gate["decided_by"] == "study_s.yaml::p[gate]"
    assert "c3 failed: boom" in final[0].gate["comparisons"][0]["note"]


def test_an_interrupted_config_stays_pending() -> None:
    pending = {"status": "pending", "comparisons": [comparison("pending")]}
    assert finalize([item(1, pending)])[0].gate == pending


def test_ab_arms_show_their_pairs_verdict() -> None:
    pending = {"status": "pending", "comparisons": [comparison("pending", "paired")]}
    decided = {
        "status": "fail",
        "comparisons": [comparison("fail", "paired", ratio=0.6, delta_pct=-40.0)],
    }
    results = [item(1, pending, "p"), item(2, pending, "p"), item(3, decided, "p")]
    pairs = decided_pairs(results)
    assert [p.nodeid for p in pairs] == ["study_s.yaml::p[ab]"]
    assert pairs[0].verdict["status"] == "fail" and pairs[0].decided_by == "study_s.yaml::p-c3"
    final = finalize(results, pairs=pairs)
    assert {r.gate["status"] for r in final if r.gate} == {"fail"}
    assert final[0].gate is not None and final[0].gate["decided_by"] == "study_s.yaml::p[ab]"
