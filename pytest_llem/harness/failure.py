"""A failed item's words: one line that says what happened (the reason, the phase, the fix where
there is one), and the whole text beside it.

The line is pytest's "crash" message: the short test summary, the JUnit ``message`` attribute
and the results' ``message`` field read it; the whole text (the domain error's table, or the
traceback) is the terminal's failure section, the JUnit element's text and the results'
``traceback`` field. Built from pytest's own ``ReprExceptionInfo`` parts, which pytest-xdist
serialises as it does any failure (``tests/unit/harness/test_failure.py`` breaks if pytest
changes them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from _pytest._code.code import ReprExceptionInfo, ReprFileLocation, ReprTracebackNative

from pytest_llem.errors import LlemError
from pytest_llem.harness import timeouts

PHASES = {
    "load": "while loading the model",
    "prepare": "while preparing the prompts",
    "warmup": "in the warmup",
    "thermal": "while waiting for thermal stability",
    "steady": "while waiting for a steady device",
    "measure": "in the measured window",
    "cool-down": "in the cool-down before the item",
    "restart": "while restarting its worker",
}


@dataclass(frozen=True)
class Interruption:
    """Where a running item was when it ended abnormally."""

    phase: str
    detail: str
    item_s: float  # seconds since the item's runner started


def where(cut: Interruption | None) -> str:
    """``in the measured window (pass 3, 12.1s/30s)``, or "" when unknown."""
    if cut is None or not cut.phase:
        return ""
    words = PHASES.get(cut.phase, f"in its {cut.phase} phase")
    return f"{words} ({cut.detail})" if cut.detail else words


def reason(exc: BaseException, cut: Interruption | None, timeout_s: float | None) -> str:
    """The one line: a timeout says so with its phase; a domain error its summary; anything
    else its type and message, with the phase."""
    place = where(cut)
    if timeouts.is_timeout(exc):
        limit = f"{timeout_s:g} s" if timeout_s is not None else "its timeout"
        return f"timed out after {limit} {place}".rstrip() + timeouts.SHORT_FIX
    if isinstance(exc, LlemError):
        return f"{type(exc).__name__}: {exc.summary()}"
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return f"{text} ({place})" if place else text


def represent(text: str, line: str, path: Path, lineno: int) -> ReprExceptionInfo:
    """A failure whose summary is ``line`` and whose body is ``text``."""
    body = [ln + "\n" for ln in text.splitlines()] or [line + "\n"]
    return ReprExceptionInfo(
        reprtraceback=ReprTracebackNative(body),
        reprcrash=ReprFileLocation(str(path), lineno + 1, line),
    )
