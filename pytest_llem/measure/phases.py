"""The progress callback: how a running item reports its phase (load, warmup, thermal, measure).

Measurement, runners and the terminal display all speak it, so it lives beneath them all.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, str], None]
"""Called as ``progress(phase, detail)``, e.g. ``("warmup", "3/10")``."""


def quiet(phase: str, detail: str) -> None:
    """The progress sink that says nothing."""
