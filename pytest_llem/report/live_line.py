"""Live phase display on the item's terminal line (``-v``, interactive terminals only).

An item can spend minutes loading, warming up until steady and measuring;
the phase and its progress are written after the item's name and erased before pytest
writes the outcome, so nobody wonders whether a GPU run is hung.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, Any

import pytest

MIN_INTERVAL_S = 0.2


class ProgressLine:
    """Writes ``[phase detail]`` after the current item name, replacing the previous text."""

    def __init__(self, config: pytest.Config, clock: Callable[[], float] = time.monotonic) -> None:
        self._file: IO[str] | None = None
        self._clock = clock
        verbose = config.get_verbosity() > 0
        worker = hasattr(config, "workerinput")
        if verbose and not worker and config.pluginmanager.has_plugin("terminalreporter"):
            writer: Any = config.get_terminal_writer()
            # The writer's own write() tracks line width for pytest's right-aligned
            # percentage; backspaces would corrupt that count, so write to its file. `_file`
            # is private: tests/unit/report/test_progress.py drives a real TerminalWriter and
            # fails if pytest renames it (the display would silently vanish otherwise).
            if getattr(writer, "hasmarkup", False):
                self._file = getattr(writer, "_file", None)
        self._shown = 0
        self._last = 0.0
        self._phase = ""

    def update(self, phase: str, detail: str) -> None:
        """Show the phase (rate-limited, except when the phase changes)."""
        if self._file is None:
            return
        now = self._clock()
        if phase == self._phase and now - self._last < MIN_INTERVAL_S:
            return
        self._phase, self._last = phase, now
        text = f" [{phase} {detail}]"[:60]
        self._erase()
        self._file.write(text)
        self._file.flush()
        self._shown = len(text)

    def _erase(self) -> None:
        if self._file is not None and self._shown:
            n = self._shown
            self._file.write("\b" * n + " " * n + "\b" * n)
            self._shown = 0

    def clear(self) -> None:
        """Erase what was shown (before pytest writes the outcome)."""
        self._erase()
        if self._file is not None:
            self._file.flush()
