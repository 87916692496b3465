"""The power/thermal sampler against the fake pynvml."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.energy import nvml
from pytest_llem.energy.sampler import GpuSampler


def test_sampler_summarises_and_counts_throttle_seconds(fake_nvml: Any, tmp_path: Path) -> None:
    gpu = fake_nvml.add("GPU-a", power_w=300.0, temperature_c=70.0, utilization=95)
    gpu.clock_reasons = 0x4 | 0x1  # sw power cap (throttling) + idle (not throttling)
    pynvml = nvml.load()
    handles = nvml.resolve_handles(pynvml, [nvml.GpuRef(0, "GPU-a")])
    series = tmp_path / "ts" / "item.jsonl"
    sampler = GpuSampler(pynvml, handles, 0.02, series)
    sampler.start()
    # Wait for the thread's samples (an event, not a sleep: a loaded machine may be slow).
    deadline = time.monotonic() + 60
    while len(sampler.samples) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    summary = sampler.stop()
    nvml.release(pynvml)
    assert summary.samples >= 5
    assert summary.power_w == {"min": 300.0, "mean": 300.0, "max": 300.0}
    assert summary.temperature_c["max"] == 70.0 and summary.utilization_pct["mean"] == 95.0
    assert set(summary.throttle_s) == {"sw_power_cap"}
    assert summary.throttle_s["sw_power_cap"] == pytest.approx(summary.samples * 0.02)
    rows = [json.loads(line) for line in series.read_text().splitlines()]
    assert len(rows) == summary.samples and rows[0]["device"] == "GPU-a"
    assert summary.timeseries_file == str(series)


def test_unsupported_queries_are_left_out(fake_nvml: Any) -> None:
    fake_nvml.add("GPU-a")

    def unsupported(handle: object) -> int:
        raise fake_nvml.real.NVMLError(fake_nvml.real.NVML_ERROR_NOT_SUPPORTED)

    fake_nvml.module.nvmlDeviceGetUtilizationRates = unsupported
    pynvml = nvml.load()
    handles = nvml.resolve_handles(pynvml, [nvml.GpuRef(0, "GPU-a")])
    sampler = GpuSampler(pynvml, handles, 0.05)
    sampler.start()
    summary = sampler.stop()
    nvml.release(pynvml)
    assert summary.utilization_pct == {} and summary.power_w


def test_clock_event_bits_are_nvidia_ml_pys() -> None:
    import pynvml as real  # the installed bindings, not the fake

    from pytest_llem.energy.sampler import CLOCK_EVENT_BITS

    names = {
        "gpu_idle": "GpuIdle",
        "applications_clocks_setting": "ApplicationsClocksSetting",
        "sw_power_cap": "SwPowerCap",
        "hw_slowdown": "HwSlowdown",
        "sync_boost": "SyncBoost",
        "sw_thermal": "SwThermalSlowdown",
        "hw_thermal": "HwThermalSlowdown",
        "hw_power_brake": "HwPowerBrakeSlowdown",
        "display_clock_setting": "DisplayClockSetting",
    }
    for ours, theirs in names.items():
        assert CLOCK_EVENT_BITS[ours] == getattr(real, f"nvmlClocksEventReason{theirs}")
        assert CLOCK_EVENT_BITS[ours] == getattr(real, f"nvmlClocksThrottleReason{theirs}")


def test_a_sample_reads_the_sm_clock_and_the_reason_bits(fake_nvml: Any) -> None:
    from pytest_llem.energy.sampler import read_sample

    gpu = fake_nvml.add("GPU-a", sm_clock_mhz=1410)
    gpu.clock_reasons = 0x20 | 0x1  # sw thermal slowdown, idle
    pynvml = nvml.load()
    sample = read_sample(pynvml, "GPU-a", gpu, 1.0)
    assert (sample.sm_clock_mhz, sample.reasons, sample.throttle) == (1410.0, 0x21, ["sw_thermal"])
    nvml.release(pynvml)


def test_drivers_before_the_clocks_event_call_fall_back_to_throttle_reasons(
    fake_nvml: Any,
) -> None:
    from pytest_llem.energy.sampler import clock_reasons

    gpu = fake_nvml.add("GPU-a")
    gpu.clock_reasons = 0x4
    # New bindings, old driver: the bindings raise FunctionNotFound for the new call.
    fake_nvml.missing_in_driver.add("nvmlDeviceGetCurrentClocksEventReasons")
    pynvml = nvml.load()
    assert clock_reasons(pynvml, gpu) == 0x4
    # Old bindings: the new call does not exist at all.
    del fake_nvml.module.nvmlDeviceGetCurrentClocksEventReasons
    assert clock_reasons(pynvml, gpu) == 0x4
    assert fake_nvml.calls.count("nvmlDeviceGetCurrentClocksThrottleReasons") == 2
    # A GPU without either: NotSupported, and the sample leaves the reasons out.
    gpu.not_supported.add("nvmlDeviceGetCurrentClocksThrottleReasons")
    with pytest.raises(pynvml.NVMLError_NotSupported):
        clock_reasons(pynvml, gpu)
    from pytest_llem.energy.sampler import read_sample

    assert read_sample(pynvml, "GPU-a", gpu, 0.0).reasons is None
    nvml.release(pynvml)
