"""Thermal stabilisation: wait until GPU temperature and power are steady, within bounds.

Replaces the seed's fixed 60 s sleep: a warm, idle-stable GPU starts measuring at once, and a
GPU that never settles is measured after ``max_s`` with a ``thermal_not_stable`` warning.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from pytest_llem.measure.phases import Progress
from pytest_llem.results.records import ThermalRecord
from pytest_llem.stats.descriptive import mean, slope_per_s
from pytest_llem.study.experiment import ExperimentConfig
from pytest_llem.study.measurement import ThermalConfig

# (seconds since the wait began, device, temperature C or None, power W or None)
Reading = tuple[float, str, float | None, float | None]


def judge(readings: Sequence[Reading], now_s: float, spec: ThermalConfig) -> tuple[bool, str]:
    """Is every device stable over the trailing ``window_s``? Returns (stable, reason)."""
    if now_s < spec.window_s:
        return False, f"need {spec.window_s:g}s of samples"
    recent = [r for r in readings if r[0] >= now_s - spec.window_s]
    for device in sorted({r[1] for r in recent}):
        rows = [r for r in recent if r[1] == device]
        temps = [(t, c) for t, _, c, _ in rows if c is not None]
        if len(temps) >= 2:
            slope = slope_per_s([t for t, _ in temps], [c for _, c in temps]) * 60.0
            if abs(slope) > spec.max_temp_slope_c_per_min:
                return False, f"{device}: temperature moving {slope:+.2f} C/min"
        powers = [p for _, _, _, p in rows if p is not None]
        if len(powers) >= 2 and mean(powers) > 0:
            spread = (max(powers) - min(powers)) / mean(powers)
            if spread > spec.max_power_spread:
                return False, f"{device}: power spread {spread:.1%} over {spec.window_s:g}s"
    return True, "temperature and power stable"


class ThermalWait:
    """Polls a reader until ``judge`` says stable, bounded by ``min_s`` and ``max_s``."""

    def __init__(
        self,
        read: Callable[[], list[tuple[str, float | None, float | None]]],
        interval_s: float,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.read = read
        self.interval_s = interval_s
        self.clock = clock
        self.sleep = sleep

    def wait(self, config: ExperimentConfig, progress: Progress) -> ThermalRecord:
        """Block until stable or ``max_s``; record how long and why."""
        spec = config.thermal
        if not spec.enabled:
            return ThermalRecord(waited_s=0.0, stabilised=True, reason="thermal wait disabled")
        start = self.clock()
        readings: list[Reading] = []
        while True:
            now = self.clock() - start
            readings.extend((now, dev, temp, power) for dev, temp, power in self.read())
            stable, reason = judge(readings, now, spec)
            if stable and now >= spec.min_s:
                return ThermalRecord(waited_s=now, stabilised=True, reason=reason)
            if now >= spec.max_s:
                return ThermalRecord(waited_s=now, stabilised=False, reason=reason)
            progress("thermal", f"{now:.0f}s/{spec.max_s:g}s: {reason}")
            self.sleep(self.interval_s)
