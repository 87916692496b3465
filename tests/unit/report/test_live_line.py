"""The live phase display writes after the item name and erases itself, on pytest's own
TerminalWriter (its ``_file`` attribute is private API: these tests break if it changes)."""

from __future__ import annotations

import io

import pytest
from _pytest._io import TerminalWriter

from pytest_llem.report.live_line import MIN_INTERVAL_S, ProgressLine


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _real_writer(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[pytest.Config, io.StringIO, TerminalWriter]:
    config = pytester.parseconfigure(*args)
    out = io.StringIO()
    writer = TerminalWriter(file=out)
    writer.hasmarkup = True  # an interactive terminal
    monkeypatch.setattr(config, "get_terminal_writer", lambda: writer)
    return config, out, writer


def test_progress_writes_and_erases_on_a_real_terminal_writer(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, out, writer = _real_writer(pytester, monkeypatch, "-v")
    writer.write("study_x.yaml::pytorch-bs1 ")
    width = writer.width_of_current_line
    clock = Clock()
    line = ProgressLine(config, clock=clock)
    line.update("warmup", "1/3")
    clock.now += MIN_INTERVAL_S / 2
    line.update("warmup", "2/3")  # rate-limited: same phase within the interval
    clock.now += MIN_INTERVAL_S / 2
    line.update("measure", "pass 1")  # a new phase always shows
    clock.now += MIN_INTERVAL_S
    line.update("measure", "pass 2")  # the same phase after the interval shows
    line.clear()
    text = out.getvalue()
    assert text.startswith("study_x.yaml::pytorch-bs1  [warmup 1/3]")
    assert " [measure pass 1]" in text and " [measure pass 2]" in text and "2/3" not in text
    n = len(" [measure pass 2]")
    assert text.endswith("\b" * n + " " * n + "\b" * n)
    # Written past the writer's width count: pytest's right-aligned percentage stays right.
    assert writer.width_of_current_line == width


def test_progress_is_silent_without_verbose(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, out, _ = _real_writer(pytester, monkeypatch)
    ProgressLine(config).update("load", "m")
    assert out.getvalue() == ""


def test_progress_is_silent_without_an_interactive_terminal(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, out, writer = _real_writer(pytester, monkeypatch, "-v")
    writer.hasmarkup = False  # CI logs: backspaces would litter them
    ProgressLine(config).update("load", "m")
    assert out.getvalue() == ""
