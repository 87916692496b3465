"""WindowWatch on a fake GPU: the window's findings from its edges and its samples."""

from __future__ import annotations

import os
from typing import Any

from pytest_llem.energy import nvml
from pytest_llem.energy.disturbance import WindowWatch, failure, retried
from pytest_llem.energy.gpu_state import GpuWatch
from pytest_llem.energy.sampler import GpuSampler
from pytest_llem.results.records import ValidityWarning
from pytest_llem.study.measurement import ValidityConfig


def test_a_gpu_window_that_went_wrong(fake_nvml: Any) -> None:
    gpu = fake_nvml.add("GPU-a", persistence=0, power_w=300.0)
    pynvml = nvml.load()
    handles = nvml.resolve_handles(pynvml, [nvml.GpuRef(0, "GPU-a")])
    sampler = GpuSampler(pynvml, handles, 0.1)
    watch = WindowWatch(ValidityConfig(), gpu=GpuWatch(pynvml, handles, sampler.taken))
    at_rest = watch.at_rest({"GPU-a": 70.0})  # 300 W "at rest": drift, and persistence off
    assert [w.code for w in at_rest] == ["persistence_mode_off", "idle_drift"]
    watch.begin()
    # During the window: a neighbour starts on the GPU, ECC errors, thermal slowdown.
    gpu.pids = [os.getppid()]
    gpu.ecc = {
        pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED: 2,
        pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED: 0,
    }
    gpu.clock_reasons = 0x20
    for _ in range(10):
        sampler.sample_once()
    check = watch.end()
    nvml.release(pynvml)
    assert [w.code for w in check.warnings] == ["gpu_foreign_process", "ecc_errors", "clocks_event"]
    assert check.figures["gpu"]["GPU-a"]["sw_thermal_share"] == 1.0
    assert "host" not in check.figures  # no host reader given


def test_a_quiet_gpu_window(fake_nvml: Any) -> None:
    fake_nvml.add("GPU-a", pids=[os.getpid()])  # ourselves only
    pynvml = nvml.load()
    handles = nvml.resolve_handles(pynvml, [nvml.GpuRef(0, "GPU-a")])
    sampler = GpuSampler(pynvml, handles, 0.1)
    watch = WindowWatch(ValidityConfig(), gpu=GpuWatch(pynvml, handles, sampler.taken))
    assert watch.at_rest({"GPU-a": 100.0}) == []
    watch.begin()
    sampler.sample_once()
    assert watch.end().warnings == []
    nvml.release(pynvml)


def test_the_failure_line_names_every_flag_and_its_fix() -> None:
    flags = [
        ValidityWarning(code="host_contention", message="61% of 2 cores used by other processes"),
        ValidityWarning(
            code="gpu_foreign_process", message="GPU-a: pid 4242 (python) 3.1 GiB computing"
        ),
        ValidityWarning(code="power_capped", message="not a disturbance by default"),
    ]
    message, fix = failure(flags, ValidityConfig())
    assert message == (
        "disturbed machine: host_contention: 61% of 2 cores used by other processes; "
        "gpu_foreign_process: GPU-a: pid 4242 (python) 3.1 GiB computing"
    )
    assert fix.startswith("stop the other work on this machine") and "nvidia-smi" in fix
    assert retried([]) is None
