"""Thermal stabilisation with a scripted clock: bounded, never a fixed sleep."""

from __future__ import annotations

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.measure.thermal import ThermalWait, judge
from pytest_llem.study.measurement import ThermalConfig


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def cfg(**thermal: object) -> BuiltinConfig:
    return BuiltinConfig.model_validate({"model": "m", "thermal": thermal})


def quiet(progress_phase: str, detail: str) -> None:
    pass


def test_stable_gpu_waits_only_the_window() -> None:
    clock = Clock()
    wait = ThermalWait(lambda: [("g", 50.0, 100.0)], 1.0, clock, clock.sleep)
    record = wait.wait(cfg(window_s=5, max_s=60), quiet)
    assert record.stabilised and record.waited_s == 5.0


def test_cooling_gpu_waits_until_temperature_settles() -> None:
    clock = Clock()
    # cools 0.5 C per second for 20 s, then flat
    wait = ThermalWait(
        lambda: [("g", 70.0 - 0.5 * min(clock.now, 20.0), 100.0)], 1.0, clock, clock.sleep
    )
    record = wait.wait(cfg(window_s=5, max_s=120, max_temp_slope_c_per_min=1.0), quiet)
    assert record.stabilised and 20.0 < record.waited_s <= 26.0


def test_never_stable_stops_at_max_and_says_why() -> None:
    clock = Clock()
    wait = ThermalWait(lambda: [("g", 40.0 + clock.now, 100.0)], 1.0, clock, clock.sleep)
    record = wait.wait(cfg(window_s=5, max_s=30), quiet)
    assert not record.stabilised and record.waited_s == 30.0
    assert "temperature moving" in record.reason


def test_min_wait_and_disabled() -> None:
    clock = Clock()
    wait = ThermalWait(lambda: [("g", 50.0, 100.0)], 1.0, clock, clock.sleep)
    assert wait.wait(cfg(window_s=2, min_s=10), quiet).waited_s == 10.0
    assert wait.wait(cfg(enabled=False), quiet).reason == "thermal wait disabled"


def test_power_spread_blocks_stability() -> None:
    spec = ThermalConfig(window_s=2, max_power_spread=0.05)
    readings = [(t, "g", 50.0, 100.0 if t % 2 else 150.0) for t in (0.0, 1.0, 2.0)]
    stable, reason = judge(readings, 2.0, spec)
    assert not stable and "power spread" in reason
