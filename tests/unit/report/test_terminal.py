"""The terminal table."""

from __future__ import annotations

from pytest_llem.report.terminal import summary_lines
from pytest_llem.results.records import EnergyInfo, ExperimentResult, Metrics


def result(name: str, energy: float | None) -> ExperimentResult:
    metrics = Metrics(
        output_tokens=10,
        input_tokens=5,
        requests=2,
        duration_s=2.0,
        output_tokens_per_s=5.0,
        input_tokens_per_s=2.5,
        energy_j=energy,
        energy_per_output_token_j=None if energy is None else energy / 10,
    )
    return ExperimentResult(
        nodeid=f"study_s.yaml::{name}",
        outcome="passed",
        study="s",
        study_hash="h",
        point_id=name,
        config_hash="c",
        cycle=1,
        config={},
        metrics=metrics,
        energy=EnergyInfo(reason=None if energy else "no energy meter"),
    )


def test_table_shows_na_for_missing_energy() -> None:
    lines = summary_lines([result("a", None), result("b", 12.0)])
    assert lines[0] == "Study s [h]"
    assert lines[1].split() == [
        "item",
        "outcome",
        "gate",
        "out",
        "tok/s",
        "J/token",
        "energy",
        "J",
        "duration",
        "s",
        "notes",
    ]
    assert lines[3].split()[:7] == ["a", "passed", "-", "5.0", "n/a", "n/a", "2.00"]
    assert "no energy meter" in lines[3]
    assert lines[4].split()[:6] == ["b", "passed", "-", "5.0", "1.2000", "12.0"]


def test_regressions_come_first() -> None:
    ok, bad = result("ok", 1.0), result("bad", 2.0)
    bad.gate = {
        "status": "fail",
        "comparisons": [{"metric": "energy_per_output_token_j", "delta_pct": 8.1}],
    }
    lines = summary_lines([ok, bad])
    assert lines[3].split()[:4] == ["bad", "passed", "fail", "(energy_per_output_token_j"]
    assert "+8.1%)" in lines[3]


def test_failure_notes_show_the_first_point_under_a_heading() -> None:
    from pytest_llem.report.terminal import row

    failed = result("a", None).model_copy(
        update={
            "outcome": "failed",
            "message": "PreflightError: pre-flight failed:\n[model] model path /m does not exist\n"
            "    fix: check the path",
        }
    )
    assert (
        row(failed)[-1] == "PreflightError: pre-flight failed: [model] model path /m does not e..."
    )
    plain = failed.model_copy(update={"message": "DatasetError: no such file\nmore detail"})
    assert row(plain)[-1] == "DatasetError: no such file"


def test_inconclusive_rows_follow_regressions_with_their_evidence_below() -> None:
    ok, bad, unsure = result("ok", 1.0), result("bad", 2.0), result("unsure", 3.0)
    bad.gate = {"status": "fail", "comparisons": [{"metric": "energy_j", "delta_pct": 8.1}]}
    unsure.gate = {
        "status": "inconclusive",
        "inconclusive": "warn",
        "comparisons": [
            {
                "metric": "output_tokens_per_s",
                "limit": "5% worse",
                "kind": "relative",
                "status": "inconclusive",
                "delta_pct": -84.6,
                "note": "beyond the limit but not significantly: welch p=0.07, alpha 0.05",
                "cv_current": 0.007,
                "cv_baseline": 0.6,
                "n_current": 3,
                "n_baseline": 3,
                "cycles_needed": 7,
            }
        ],
    }
    lines = summary_lines([ok, unsure, bad])
    assert [ln.split()[0] for ln in lines[3:6]] == ["bad", "unsure", "ok"]
    assert "inconclusive (output_tokens_per_s -84.6%)" in lines[4]
    assert lines[6] == (
        "inconclusive (warning only): unsure: output_tokens_per_s: -84.6% against a limit of "
        "5% worse is inconclusive (beyond the limit but not significantly: welch p=0.07, "
        "alpha 0.05); cycles vary by 0.7% here (n=3) and 60.0% in the baseline (n=3); "
        "about 7 cycles per side would decide a change of this size at this noise (the plan's "
        "figure assumes no change)"
    )
