"""The live phase display writes after the item name and erases itself."""

from __future__ import annotations

import io
import types

import pytest

from pytest_llem.report.progress import ProgressLine


def test_progress_writes_and_erases(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = pytester.parseconfigure("-v")
    out = io.StringIO()
    monkeypatch.setattr(
        config, "get_terminal_writer", lambda: types.SimpleNamespace(hasmarkup=True, _file=out)
    )
    line = ProgressLine(config)
    line.update("warmup", "1/3")
    line.update("warmup", "2/3")  # rate-limited: same phase within 0.2 s
    line.update("measure", "pass 1")
    line.clear()
    text = out.getvalue()
    assert text.startswith(" [warmup 1/3]")
    assert " [measure pass 1]" in text and "2/3" not in text
    n = len(" [measure pass 1]")
    assert text.endswith("\b" * n + " " * n + "\b" * n)


def test_progress_is_silent_without_verbose_or_terminal(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = pytester.parseconfigure()
    out = io.StringIO()
    monkeypatch.setattr(
        config, "get_terminal_writer", lambda: types.SimpleNamespace(hasmarkup=True, _file=out)
    )
    ProgressLine(config).update("load", "m")
    assert out.getvalue() == ""
