"""The meter of last resort: measures nothing and says why."""

from __future__ import annotations

import time

from pytest_llem.energy.meter import EnergyReading, MeterInfo


class NullMeter:
    """No energy source: every reading is None with the reason, never a made-up zero."""

    def __init__(self, reason: str) -> None:
        self.info = MeterInfo(source=None, method=None, resolution_j=None, reason=reason)
        self._t0 = 0.0

    def start(self) -> None:
        """Remember the start time (durations still count)."""
        self._t0 = time.perf_counter()

    def stop(self) -> EnergyReading:
        """Return a reading without energy, with the reason."""
        return EnergyReading(
            total_j=None, duration_s=time.perf_counter() - self._t0, reason=self.info.reason
        )

    def close(self) -> None:
        """Nothing to release."""
