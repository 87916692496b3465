"""The steadiness judgement on scripted readings: short runs, ramps, temperature, sparse data."""

from __future__ import annotations

from collections.abc import Callable

from pytest_llem.measure.thermal import Reading, ThermalReader, judge
from pytest_llem.study.measurement import ThermalConfig

SPEC = ThermalConfig(window_s=5, min_steady_s=1.5, max_power_spread=0.05)


Curve = Callable[[float], float]


def series(
    power: float | Curve, temp: float | Curve, until_s: float, step_s: float = 0.5
) -> list[Reading]:
    """Readings of one device every ``step_s`` from ``step_s`` to ``until_s``."""
    out: list[Reading] = []
    for i in range(1, round(until_s / step_s) + 1):
        t = i * step_s
        p = power(t) if callable(power) else power
        c = temp(t) if callable(temp) else temp
        out.append((t, "g", c, p))
    return out


def test_a_flat_device_is_steady_after_min_steady_s_of_readings() -> None:
    readings = series(300.0, 60.0, until_s=2.0)
    assert judge(readings[:-1], 1.5, SPEC) == (False, "need 1.5s of readings under load")
    assert judge(readings, 2.0, SPEC) == (True, "power and temperature steady")


def test_a_ramp_that_looks_flat_early_still_fails_on_its_trend() -> None:
    # 2 s under load, +4 W/s: 2% over the 1.5 s read so far (within the spread), but 6.6%
    # projected over the 5 s window; +2 W/s projects to 3.3%.
    fast = series(lambda t: 300.0 + 4.0 * t, 60.0, until_s=2.0)
    steady, reason = judge(fast, 2.0, SPEC)
    assert not steady and reason == "g: power drifting 6.6% per 5s"
    assert judge(series(lambda t: 300.0 + 2.0 * t, 60.0, until_s=2.0), 2.0, SPEC)[0]
    # Later, the whole window_s is judged: a ramp of +4 W/s spreads 6% over 5 s.
    steady, reason = judge(series(lambda t: 300.0 + 4.0 * t, 60.0, until_s=10.0), 10.0, SPEC)
    assert not steady and reason.startswith("g: power spread")


def test_power_spread_blocks_stability() -> None:
    readings = series(lambda t: 100.0 if int(t * 2) % 2 else 150.0, 50.0, until_s=3.0)
    steady, reason = judge(readings, 3.0, SPEC)
    assert not steady and "power spread" in reason


def test_temperature_is_judged_over_the_whole_window() -> None:
    # Power flat for the last 1.5 s, but the temperature rose 3 C within the last 5 s.
    readings = series(300.0, lambda t: 60.0 + min(t, 6.0) * 0.5, until_s=8.0)
    steady, reason = judge(readings, 8.0, SPEC)
    assert not steady and "temperature moving" in reason
    assert judge(series(300.0, lambda t: 60.0 + min(t, 6.0) * 0.5, until_s=11.5), 11.5, SPEC)[0]


def test_sparse_readings_judge_the_last_three() -> None:
    # Long batches: one reading every 2 s; the 1.5 s run holds one reading, so three are used.
    readings = series(300.0, 60.0, until_s=4.0, step_s=2.0)
    assert judge(readings, 4.0, SPEC) == (False, "g: need 3 power readings")
    readings = series(lambda t: 240.0 if t < 5 else 300.0, 60.0, until_s=8.0, step_s=2.0)
    steady, reason = judge(readings, 8.0, SPEC)
    assert not steady and "power spread" in reason  # 240 W at 4 s is among the last three
    assert judge(series(300.0, 60.0, until_s=6.0, step_s=2.0), 6.0, SPEC)[0]


def test_every_device_must_be_steady_and_say_what_it_reports() -> None:
    flat = series(300.0, 60.0, until_s=3.0)
    rising = [(t, "h", 60.0, 200.0 + 20.0 * t) for t, _, _, _ in flat]
    steady, reason = judge(flat + rising, 3.0, SPEC)
    assert not steady and reason.startswith("h: power")
    blind = [(t, "h", None, None) for t, _, _, _ in flat]
    assert judge(flat + blind, 3.0, SPEC) == (False, "h: reports neither temperature nor power")
    assert judge([], 3.0, SPEC) == (False, "no readings yet")


def test_min_steady_s_is_capped_at_window_s() -> None:
    spec = ThermalConfig(window_s=0.5, min_steady_s=1.5)
    readings = series(300.0, 60.0, until_s=0.75, step_s=0.25)
    assert judge(readings[:2], 0.5, spec) == (False, "need 0.5s of readings under load")
    assert judge(readings, 0.75, spec)[0]


def test_the_reader_reads_through_its_callable() -> None:
    reader = ThermalReader(lambda: [("g", 50.0, 100.0)], interval_s=0.25)
    assert reader.read() == [("g", 50.0, 100.0)] and reader.interval_s == 0.25
