"""Device steadiness: are every GPU's power and temperature steady now?

Judged under load, between warmup batches (see measure/stabilise.py), rather than in a wait
after warmup: a GPU that idles while it is judged cools, so the window would start on a GPU
other than the one judged, and the wait would be time outside the window twice over.

Replaces the seed's fixed 60 s sleep: a GPU left hot and steady by the previous item is
recognised in ``min_steady_s``; one still heating warms up until its plateau, at most
``max_s``, after which it is measured with a ``thermal_not_stable`` warning.

NVML reports whole degrees: within ``window_s`` a slope shows only once the temperature
crosses a degree, so heating slower than about 60 / ``window_s`` C/min reads as flat there.
Power, read in milliwatts, is the finer witness: its trend is what keeps a GPU whose draw
still rises from starting the window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pytest_llem.stats.descriptive import mean, slope_per_s
from pytest_llem.study.measurement import ThermalConfig

# (seconds on the protocol's clock, device, temperature C or None, power W or None)
Reading = tuple[float, str, float | None, float | None]

# A spread and a trend need a few points: with readings sparser than that over ``window_s``
# (long batches), the last few readings are judged instead.
MIN_READINGS = 3

# Readings land on batch ends of a float clock: 2.0 - 0.5 must count as 1.5 s.
_EPS_S = 1e-9


class ThermalReader:
    """Reads each device's (temperature, power) for the protocol, e.g. from the GPU sampler.

    The protocol calls ``read`` between warmup batches, at most once per ``interval_s``.
    """

    def __init__(
        self, read: Callable[[], list[tuple[str, float | None, float | None]]], interval_s: float
    ) -> None:
        self._read = read
        self.interval_s = interval_s

    def read(self) -> list[tuple[str, float | None, float | None]]:
        """(device, temperature C or None, power W or None) for every device, now."""
        return self._read()


def _trailing(rows: list[tuple[float, float]], since_s: float) -> list[tuple[float, float]]:
    recent = [row for row in rows if row[0] >= since_s - _EPS_S]
    return recent if len(recent) >= MIN_READINGS else rows[-MIN_READINGS:]


def _power_reason(recent: list[tuple[float, float]], spec: ThermalConfig) -> str:
    """Why the power over ``recent`` is not steady, or "" when it is."""
    level = mean([p for _, p in recent])
    if level <= 0:
        return ""  # an idle or unpowered reading: nothing to be unsteady relative to
    spread = (max(p for _, p in recent) - min(p for _, p in recent)) / level
    if spread > spec.max_power_spread:
        return f"power spread {spread:.1%} over {recent[-1][0] - recent[0][0]:.1f}s"
    # A run shorter than window_s must be as demanding of a slow ramp as a full window: the
    # trend is projected over window_s, so a GPU still heating fails however flat its first
    # second or two under load look.
    drift = abs(slope_per_s([t for t, _ in recent], [p for _, p in recent])) * spec.window_s
    if drift / level > spec.max_power_spread:
        return f"power drifting {drift / level:.1%} per {spec.window_s:g}s"
    return ""


def _temperature_reason(recent: list[tuple[float, float]], spec: ThermalConfig) -> str:
    """Why the temperature over ``recent`` is not steady, or "" when it is."""
    if len(recent) < 2:
        return ""
    slope = slope_per_s([t for t, _ in recent], [c for _, c in recent]) * 60.0
    if abs(slope) > spec.max_temp_slope_c_per_min:
        return f"temperature moving {slope:+.2f} C/min"
    return ""


def judge(readings: Sequence[Reading], now_s: float, spec: ThermalConfig) -> tuple[bool, str]:
    """Is every device steady at ``now_s``? Returns (steady, reason).

    Over the trailing ``window_s``, as much of it as has been read but at least
    ``min_steady_s`` (and ``MIN_READINGS`` readings, older ones when sparser): the power's
    spread, and its trend projected over ``window_s``, within ``max_power_spread``; the
    temperature's slope within ``max_temp_slope_c_per_min``.
    """
    if not readings:
        return False, "no readings yet"
    shortest = min(spec.min_steady_s, spec.window_s)
    if now_s - readings[0][0] < shortest - _EPS_S:
        return False, f"need {shortest:g}s of readings under load"
    since = now_s - spec.window_s
    for device in sorted({r[1] for r in readings}):
        rows = [r for r in readings if r[1] == device]
        power = [(t, p) for t, _, _, p in rows if p is not None]
        temps = [(t, c) for t, _, c, _ in rows if c is not None]
        if not power and not temps:
            return False, f"{device}: reports neither temperature nor power"
        if 0 < len(power) < MIN_READINGS:
            return False, f"{device}: need {MIN_READINGS} power readings"
        reason = _power_reason(_trailing(power, since), spec) if power else ""
        reason = reason or _temperature_reason(_trailing(temps, since), spec)
        if reason:
            return False, f"{device}: {reason}"
    return True, "power and temperature steady"
