"""Every outcome pytest or a plugin reports is recorded, never a crash; a repeated attempt is
one JSONL line of the same cycle, and the report keeps the last attempt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.report.reporter import Reporter, _outcome
from pytest_llem.settings.resolve import Settings

IDENTITY: dict[str, Any] = {
    "study": "s",
    "study_hash": "0" * 16,
    "point_id": "pytorch",
    "config_hash": "1" * 16,
    "cycle": 1,
    "config": {},
}
NODEID = "study_s.yaml::pytorch-c1"


def _report(when: str, outcome: str, **extra: Any) -> pytest.TestReport:
    longrepr = ("f", 1, "Skipped: no") if outcome == "skipped" else None
    report = pytest.TestReport(NODEID, ("f", 0, "x"), {}, outcome, longrepr, when)
    report.llem_item = IDENTITY  # type: ignore[attr-defined]
    for key, value in extra.items():
        setattr(report, key, value)
    return report


@pytest.fixture
def reporter(pytestconfig: pytest.Config, tmp_path: Path) -> Reporter:
    settings = Settings(
        rootdir=tmp_path,
        results_dir=tmp_path,
        json_path=tmp_path / "report.json",
        max_items=10,
        study_patterns=("study_*.yaml",),
    )
    return Reporter(pytestconfig, settings)


def _jsonl(path: Path) -> list[tuple[int, str]]:
    lines = (path / "results.jsonl").read_text().splitlines()
    return [(r["attempt"], r["outcome"]) for r in map(json.loads, lines)]


@pytest.mark.parametrize("teardown_logged", [True, False])
def test_rerun_attempts_are_lines_of_one_cycle_and_the_report_keeps_the_last(
    reporter: Reporter, tmp_path: Path, teardown_logged: bool
) -> None:
    for _ in range(2):  # two attempts that pytest-rerunfailures repeats
        reporter.pytest_runtest_logreport(_report("setup", "passed"))
        reporter.pytest_runtest_logreport(_report("call", "rerun"))
        if teardown_logged:
            reporter.pytest_runtest_logreport(_report("teardown", "passed"))
    for when, outcome in (("setup", "passed"), ("call", "passed"), ("teardown", "passed")):
        reporter.pytest_runtest_logreport(_report(when, outcome))
    assert _jsonl(tmp_path) == [(1, "rerun"), (2, "rerun"), (3, "passed")]
    assert [(r.cycle, r.attempt, r.outcome) for r in reporter.results] == [(1, 3, "passed")]
    assert reporter.ran == [NODEID] * 3


def test_a_failing_teardown_after_a_pass_is_an_error(reporter: Reporter, tmp_path: Path) -> None:
    for when, outcome in (("setup", "passed"), ("call", "passed"), ("teardown", "failed")):
        reporter.pytest_runtest_logreport(_report(when, outcome))
    assert _jsonl(tmp_path) == [(1, "error")]


def test_outcomes_of_pytest_and_plugins_map_into_the_results_vocabulary() -> None:
    assert _outcome(_report("call", "rerun")) == "rerun"
    assert _outcome(_report("call", "skipped", wasxfail="flaky")) == "xfailed"
    assert _outcome(_report("call", "passed", wasxfail="flaky")) == "xpassed"
    assert _outcome(_report("setup", "failed"), failed="error") == "error"
    assert _outcome(_report("call", "skipped")) == "skipped"
    assert _outcome(_report("call", "weird")) == "error"  # an unknown plugin's outcome
