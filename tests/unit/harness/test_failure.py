"""A failed item's one line and whole text, through pytest's own report machinery: the short
summary, JUnit's message attribute and xdist's serialisation all read the line."""

from __future__ import annotations

from pathlib import Path

import pytest
from _pytest.reports import TestReport

from pytest_llem.errors import GateFailure, LlemError
from pytest_llem.harness.failure import Interruption, reason, represent, where


class Failed(Exception):  # noqa: N818 - named as pytest names it: timeouts match the name
    """What pytest-timeout raises (pytest's Failed, matched by name)."""


def test_a_timeout_says_where_it_stopped_and_how_far_it_got() -> None:
    cut = Interruption("measure", "pass 3, 12.1s/30s", 45.2)
    line = reason(Failed("Timeout (>45.0s) from pytest-timeout."), cut, 45.0)
    assert line.startswith("timed out after 45 s in the measured window (pass 3, 12.1s/30s)")
    assert "fix: raise the item timeout" in line
    assert where(Interruption("load", "gpt2", 3.0)) == "while loading the model (gpt2)"


def test_a_domain_error_is_its_summary_and_anything_else_says_its_phase() -> None:
    err = LlemError("pre-flight failed:\n[gpu] no CUDA GPU\n    fix: x", "fix the problems")
    assert reason(err, None, None) == (
        "LlemError: pre-flight failed: [gpu] no CUDA GPU; fix: fix the problems"
    )
    gate = GateFailure("table\nrows", "investigate", summary="regression gate failed for p")
    assert reason(gate, None, None) == "GateFailure: regression gate failed for p"
    boom = reason(RuntimeError("engine died\nmore"), Interruption("warmup", "2/3", 1.0), None)
    assert boom == "RuntimeError: engine died (in the warmup (2/3))"


def test_the_line_and_the_text_survive_pytest_and_xdist() -> None:
    # Breaks if pytest changes ReprExceptionInfo / ReprTracebackNative / ReprFileLocation or
    # the way reports are serialised between xdist workers and the controller.
    longrepr = represent("GateFailure: table\nrow 1\nrow 2", "the one line", Path("s.yaml"), 3)
    report = TestReport("s.yaml::p-c1", ("s.yaml", 3, "p-c1"), {}, "failed", longrepr, "call")
    assert report.longrepr.reprcrash.message == "the one line"  # type: ignore[union-attr]
    assert "row 2" in report.longreprtext
    back = TestReport._from_json(report._to_json())
    assert back.longrepr.reprcrash.message == "the one line"  # type: ignore[union-attr]
    assert "row 1" in back.longreprtext


def test_junit_carries_the_line_as_message_and_the_text_beside_it(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: object
) -> None:
    pytester.makefile(".yaml", study_f=fast_study(tiny_gpt2))  # type: ignore[operator]
    pytester.runpytest("--llem-fail-on=latency_p99_s<0.0000001", "--junitxml=j.xml")
    xml = (pytester.path / "j.xml").read_text()
    assert (
        'message="GateFailure: regression gate failed for pytorch (cycle 1): latency_p99_s' in xml
    )
    assert "metric" in xml.split('message="', 1)[1].split(">", 1)[1]  # the table is the text
