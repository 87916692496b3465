"""execution gaps act: a cool-down before items and cycles, recorded in the result."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

StudyText = Callable[..., str]

# The inner session's sleeper records instead of sleeping (no waiting in tests).
CONFTEST = """
import pytest
from pytest_llem.harness.session import SESSION_KEY

SLEPT = []

@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    config.stash[SESSION_KEY].sleep = SLEPT.append

def pytest_sessionfinish(session):
    print("slept:", sum(SLEPT))
"""


def test_original_gap_names_make_a_recorded_cool_down(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makefile(
        ".yaml",
        study_gap=fast_study(
            tiny_gpt2,
            "sweep:\n  n: [1, 2]\n"
            "execution: {n_cycles: 2, cycle_order: interleaved,"
            " experiment_gap_seconds: 2, cycle_gap_seconds: 5}\n",
        ),
    )
    result = pytester.runpytest("-s", "--llem-results=out")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*note: study_gap.yaml: LLenergyMeasure names accepted*"])
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert [item["cooldown_s"] for item in report["items"]] == [0.0, 2.0, 7.0, 2.0]
    result.stdout.fnmatch_lines(["*slept: 11.0*"])
