"""GPU state checks against the fake NVML: settings, processes, ECC, clock events, energy and
idle checks, and "not available" wherever a GPU or driver cannot answer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.energy import gpu_findings, gpu_state, nvml
from pytest_llem.energy.gpu_findings import GpuLimits
from pytest_llem.energy.gpu_state import GpuState
from pytest_llem.energy.sampler import Sample

GIB = 1024**3


@pytest.fixture
def opened(fake_nvml: Any) -> Iterator[tuple[Any, Any, Any]]:
    """(fake NVML, loaded module, the GPU) with one H100 added."""
    gpu = fake_nvml.add("GPU-aaaaaaaa-1111", index=0)
    pynvml = nvml.load()
    yield fake_nvml, pynvml, gpu
    nvml.release(pynvml)


def test_settings_are_read_once_per_device(opened: tuple[Any, Any, Any]) -> None:
    fake, pynvml, gpu = opened
    gpu.persistence, gpu.app_clock_mhz = 0, 1410
    found = gpu_state.settings(pynvml, gpu.uuid, gpu, now=100.0)
    assert (found.index, found.persistence, found.app_clock_mhz) == (0, False, 1410)
    assert found.default_app_clock_mhz == 1755 and found.max_sm_clock_mhz == 1980
    assert found.app_clocks_set is True
    calls = len(fake.calls)
    assert gpu_state.settings(pynvml, gpu.uuid, gpu, now=101.0) is found
    assert len(fake.calls) == calls  # cached
    gpu.persistence = 1
    later = gpu_state.settings(pynvml, gpu.uuid, gpu, now=100.0 + gpu_state.SETTINGS_TTL_S)
    assert later.persistence is True


def test_a_consumer_gpu_answers_not_supported_and_nothing_breaks(
    opened: tuple[Any, Any, Any],
) -> None:
    _, pynvml, gpu = opened
    gpu.not_supported |= {
        "nvmlDeviceGetPersistenceMode",
        "nvmlDeviceGetApplicationsClock",
        "nvmlDeviceGetDefaultApplicationsClock",
        "nvmlDeviceGetMaxClockInfo",
        "nvmlDeviceGetClockInfo",
        "nvmlDeviceGetTotalEccErrors",
        "nvmlDeviceGetComputeRunningProcesses",
        "nvmlDeviceGetIndex",
    }
    found = gpu_state.settings(pynvml, gpu.uuid, gpu, now=0.0)
    assert (found.persistence, found.app_clocks_set, found.max_sm_clock_mhz) == (None, None, None)
    state = gpu_state.read_state(pynvml, gpu.uuid, gpu)
    assert state.processes is None and state.ecc_corrected is None and state.sm_clock_mhz is None
    assert state.power_w == 100.0
    said, fixes = gpu_state.at_rest(pynvml, gpu.uuid, gpu, set())
    assert said == ["persistence n/a", "clocks not locked (clocks n/a)", "processes n/a"]
    assert fixes == []


def test_processes_that_are_not_ours_with_names_and_memory(opened: tuple[Any, Any, Any]) -> None:
    _, pynvml, gpu = opened
    gpu.pids = [os.getpid(), os.getppid(), 4_000_000]  # ours, our parent, one gone from /proc
    gpu.pid_memory = {os.getppid(): int(3.1 * GIB), 4_000_000: None}
    state = gpu_state.read_state(pynvml, gpu.uuid, gpu)
    [warning] = gpu_findings.foreign_processes([state], {os.getpid()})
    parent = Path(f"/proc/{os.getppid()}/comm").read_text().strip()
    assert warning.code == "gpu_foreign_process"
    assert f"pid {os.getppid()} ({parent}) 3.1 GiB" in warning.message
    # NVML's own name lookup fails in the fake (NotFound): the name is "?".
    assert "pid 4000000 (?) memory n/a" in warning.message
    assert warning.figures["memory_gib"] == pytest.approx(3.1, abs=0.01)
    assert warning.figures["brief"] == f"pid {os.getppid()} ({parent}) 3.1 GiB +1"


def test_ecc_counters_that_moved(opened: tuple[Any, Any, Any]) -> None:
    _, pynvml, gpu = opened
    start = gpu_state.read_state(pynvml, gpu.uuid, gpu)
    assert gpu_findings.ecc_errors([start], [start]) == []
    gpu.ecc = {
        pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED: 3,
        pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED: 1,
    }
    [warning] = gpu_findings.ecc_errors([start], [gpu_state.read_state(pynvml, gpu.uuid, gpu)])
    assert warning.code == "ecc_errors"
    assert warning.figures["corrected"] == 3 and warning.figures["uncorrected"] == 1


def samples(
    reasons: list[int], clocks: list[float] | None = None, device: str = "GPU-a"
) -> list[Sample]:
    clocks = clocks or [1980.0] * len(reasons)
    return [
        Sample(t=i * 0.1, device=device, power_w=300.0, sm_clock_mhz=c, reasons=r)
        for i, (r, c) in enumerate(zip(reasons, clocks, strict=True))
    ]


def test_clock_events_and_power_cap_have_their_own_flags() -> None:
    # 10 samples: sw thermal in 4, hw slowdown in 1 (at the 5% limit: not over), power cap in 6.
    reasons = [0x20 | 0x4] * 4 + [0x8 | 0x4] + [0x4] + [0x1] * 4
    found = gpu_findings.clock_events(samples(reasons), GpuLimits(max_clocks_event=0.10))
    assert [w.code for w in found] == ["clocks_event", "power_capped"]
    assert found[0].message == "GPU-a: sw thermal 40% of the window"
    assert found[0].figures["sw_thermal"] == pytest.approx(0.4)
    assert found[1].label() == "power_capped sw power cap 60% of the window"
    # Idle and application clocks are not events; samples without reasons are left out.
    quiet = [*samples([0x1, 0x2]), Sample(t=1.0, device="GPU-a")]
    assert gpu_findings.clock_events(quiet, GpuLimits()) == []


def test_clock_spread_and_the_clocks_seen() -> None:
    seen = samples([0] * 3, [1980.0, 1500.0, 1700.0])
    [warning] = gpu_findings.clock_spread(seen, GpuLimits())
    assert warning.code == "clocks_varied" and warning.figures["brief"] == "1500-1980 MHz"
    assert gpu_findings.clock_spread(samples([0] * 3, [1980.0, 1950.0, 1980.0]), GpuLimits()) == []
    figures = gpu_findings.clock_figures(seen)
    assert figures["GPU-a"]["sm_mhz_min"] == 1500.0 and figures["GPU-a"]["sm_mhz_max"] == 1980.0


def test_counter_against_integrated_sampled_power() -> None:
    # 300 W sampled for 2 s: 600 J. A counter reading 605 J agrees; 800 J does not.
    seen = [Sample(t=i * 0.1, device="GPU-a", power_w=300.0) for i in range(21)]
    limits = GpuLimits()
    assert gpu_findings.energy_mismatch(seen, {"GPU-a": 605.0}, (0.0, 2.0), limits) == []
    [warning] = gpu_findings.energy_mismatch(seen, {"GPU-a": 800.0}, (0.0, 2.0), limits)
    assert warning.code == "energy_mismatch" and warning.figures["sampled_j"] == pytest.approx(600)
    # Too few samples inside the window: nothing to say.
    assert gpu_findings.energy_mismatch(seen[:5], {"GPU-a": 800.0}, (0.0, 2.0), limits) == []


def test_idle_power_against_the_baseline() -> None:
    limits = GpuLimits(max_idle_drift=0.25)
    assert gpu_findings.idle_drift({"GPU-a": 80.0}, {"GPU-a": 70.0}, limits) == []  # +10 W
    [warning] = gpu_findings.idle_drift({"GPU-a": 120.0}, {"GPU-a": 70.0}, limits)
    assert warning.code == "idle_drift" and warning.figures["brief"] == "+71%"
    assert gpu_findings.idle_drift({"GPU-a": 120.0}, {}, limits) == []  # no baseline


def test_at_rest_says_what_to_fix(opened: tuple[Any, Any, Any]) -> None:
    _, pynvml, gpu = opened
    gpu.persistence, gpu.sm_clock_mhz = 0, 345
    gpu.pids, gpu.pid_memory = [os.getppid()], {os.getppid(): 2 * GIB}
    said, fixes = gpu_state.at_rest(pynvml, gpu.uuid, gpu, {os.getpid()})
    assert said[:2] == ["persistence off", "clocks not locked (SM 345 of 1980 MHz at rest)"]
    assert said[2].startswith(f"other processes: pid {os.getppid()} (")
    assert fixes == [
        "sudo nvidia-smi -i 0 -pm 1",
        "sudo nvidia-smi -i 0 --lock-gpu-clocks=1755,1755",
        "stop them (nvidia-smi lists them) or pick another GPU",
    ]


def test_at_rest_of_a_prepared_gpu(fake_nvml: Any) -> None:
    gpu = fake_nvml.add("GPU-b", sm_clock_mhz=1755)
    pynvml = nvml.load()
    said, fixes = gpu_state.at_rest(pynvml, gpu.uuid, gpu, set())
    nvml.release(pynvml)
    assert said == [
        "persistence on",
        "clocks look locked (SM 1755 MHz at rest, max 1980)",
        "no other processes",
    ]
    assert fixes == []


def test_foreign_processes_seen_at_either_edge_are_named_once() -> None:
    proc = gpu_state.GpuProcess(77, "python", GIB)
    start = GpuState("GPU-a", 100.0, None, None, None, (proc,))
    end = GpuState("GPU-a", 100.0, None, None, None, (proc,))
    [warning] = gpu_findings.foreign_processes([start, end], set())
    assert warning.figures["pids"] == "77"
