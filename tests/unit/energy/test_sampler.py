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
