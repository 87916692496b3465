"""Idle baselines: measured once, cached on disk with a timestamp, re-measured when old."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.measure.idle_power import IdleBaselines


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def write_uj(root: Path, value: int) -> None:
    (root / "intel-rapl:0" / "energy_uj").write_text(str(value))


def test_cpu_baseline_measured_once_and_cached(tmp_path: Path, fake_rapl: Path) -> None:
    clock = Clock()
    cache = tmp_path / "idle.json"

    def sleep(s: float) -> None:  # 8 W on the package during the idle window
        clock.sleep(s)
        write_uj(fake_rapl, 1000 + int(8e6 * s))

    baselines = IdleBaselines(cache, rapl_root=fake_rapl, clock=clock, sleep=sleep)
    config = BuiltinConfig(model="m", device="cpu", baseline={"duration_s": 2})
    reading = baselines.get(config)
    assert baselines.measurements == 1
    assert reading.per_device_w["package-0"] > 0
    assert baselines.get(config) is reading and baselines.measurements == 1
    stored = json.loads(cache.read_text())
    assert (
        "rapl" in stored["entries"]
        and stored["entries"]["rapl"]["measured_at"] == reading.measured_at
    )
    # a new session reuses the disk cache while it is young enough
    fresh = IdleBaselines(cache, rapl_root=fake_rapl, clock=clock, sleep=sleep)
    assert fresh.get(config).per_device_w == reading.per_device_w and fresh.measurements == 0
    clock.now += 10_000  # older than max_age_s (3600): measured again
    assert fresh.get(config).measured_at > reading.measured_at and fresh.measurements == 1


def test_gpu_baseline_per_uuid(tmp_path: Path, fake_nvml: Any) -> None:
    import time

    fake_nvml.add("GPU-a", power_w=60.0)
    fake_nvml.add("GPU-b", power_w=80.0)
    baselines = IdleBaselines(tmp_path / "idle.json", sleep=time.sleep)
    reading = baselines.get(BuiltinConfig(model="m", device="cuda", baseline={"duration_s": 1}))
    assert reading.per_device_w["GPU-a"] == pytest.approx(60.0, rel=0.1)
    assert reading.per_device_w["GPU-b"] == pytest.approx(80.0, rel=0.1)
    both = reading.for_devices(["GPU-a", "GPU-b"], reading.measured_at + 5, 3600)
    assert both.power_w is not None and both.age_s == 5 and not both.stale


def test_no_source_or_disabled_gives_a_reason(tmp_path: Path) -> None:
    baselines = IdleBaselines(tmp_path / "idle.json", rapl_root=tmp_path / "none")
    assert "no RAPL" in (baselines.get(BuiltinConfig(model="m", device="cpu")).reason or "")
    off = BuiltinConfig(model="m", device="cpu", baseline={"enabled": False})
    assert baselines.get(off).reason == "baseline disabled"


def test_corrupt_cache_is_remeasured(tmp_path: Path, fake_rapl: Path) -> None:
    cache = tmp_path / "idle.json"
    cache.write_text("{not json")
    clock = Clock()
    baselines = IdleBaselines(cache, rapl_root=fake_rapl, clock=clock, sleep=clock.sleep)
    baselines.get(BuiltinConfig(model="m", device="cpu", baseline={"duration_s": 1}))
    assert baselines.measurements == 1 and json.loads(cache.read_text())["version"] == 1
