"""The EnergyMeter interface and the reading it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class EnergyReading:
    """Energy of one window. ``total_j`` is None when the source measured nothing."""

    total_j: float | None
    per_device_j: dict[str, float] = field(default_factory=dict)
    duration_s: float = 0.0
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
