"""The EnergyMeter interface and the reading it returns."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class EnergyReading:
    """Energy of one window. ``total_j`` is None when the source measured nothing.

    ``t_start_s``/``t_end_s``: ``time.perf_counter()`` at the meter's opening and closing
    reads, where the meter knows them; ``crosscheck``: a second source over the same window.
    """

    total_j: float | None
    per_device_j: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
    reason: str | None = None
    t_start_s: float | None = None
    t_end_s: float | None = None
    crosscheck: Crosscheck | None = None


@dataclass(frozen=True)
class Crosscheck:
    """What a second energy source read over the same window."""

    source: str
    total_j: float | None
    per_device_j: dict[str, float] = field(default_factory=dict)
    reason: str | None = None


@dataclass(frozen=True)
class MeterInfo:
    """What a meter is, recorded in every result."""

    source: str | None
    method: str | None
    resolution_j: float | None
    reason: str | None = None


class EnergyMeter(Protocol):
    """Measures the energy of a window between ``start()`` and ``stop()``."""

    info: MeterInfo

    def start(self) -> None:
        """Open a window (read counters, start polling)."""

    def stop(self) -> EnergyReading:
        """Close the window and return its energy."""

    def close(self) -> None:
        """Release device handles."""


def trapezoid(times_s: Sequence[float], values: Sequence[float]) -> float:
    """Integral of a sampled signal by the trapezoidal rule (e.g. W over s -> J)."""
    if len(times_s) != len(values):
        raise ValueError("times and values differ in length")
    return math.fsum(
        (times_s[i] - times_s[i - 1]) * (values[i] + values[i - 1]) / 2.0
        for i in range(1, len(values))
    )
