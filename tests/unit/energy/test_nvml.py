"""The NVML meter and device matching, against the fake pynvml."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pytest_llem.energy import nvml


def test_missing_library_is_a_reason_not_a_crash(fake_nvml: Any) -> None:
    fake_nvml.init_error = fake_nvml.real.NVML_ERROR_LIBRARY_NOT_FOUND
    with pytest.raises(nvml.NvmlUnavailable, match="NVMLError_LibraryNotFound"):
        nvml.load()


def test_real_module_on_this_machine_reports_why() -> None:
    # No GPU and no driver here: the real pynvml must give a reason, never a number.
    if nvml.probe_reason() is None:
        pytest.skip("this machine has a working NVML")
    with pytest.raises(nvml.NvmlUnavailable, match=r"^no NVML: "):
        nvml.load()


def test_counter_meter_measures_every_used_gpu(fake_nvml: Any) -> None:
    a = fake_nvml.add("GPU-a", power_w=200.0)
    fake_nvml.add("GPU-b", power_w=50.0)  # not used by the engine: must not be counted
    c = fake_nvml.add("GPU-c", power_w=100.0)
    pynvml = nvml.load()
    handles = nvml.resolve_handles(pynvml, [nvml.GpuRef(0, "GPU-a"), nvml.GpuRef(1, "GPU-c")])
    meter = nvml.NvmlMeter(pynvml, handles, 0.01)
    assert meter.info.method == "counter" and meter.info.resolution_j == 0.001
    meter.start()
    time.sleep(0.3)
    reading = meter.stop()
    meter.close()
    assert set(reading.per_device_j) == {a.uuid, c.uuid}
    assert reading.per_device_j["GPU-a"] == pytest.approx(200.0 * reading.duration_s, rel=0.2)
    assert reading.total_j == pytest.approx(sum(reading.per_device_j.values()))
    assert fake_nvml.initialised == 0  # released


def test_polling_fallback_for_gpus_without_the_counter(fake_nvml: Any) -> None:
    fake_nvml.add("GPU-old", power_w=150.0, supports_energy=False)
    pynvml = nvml.load()
    handles = nvml.resolve_handles(pynvml, [nvml.GpuRef(0, "GPU-old")])
    meter = nvml.NvmlMeter(pynvml, handles, 0.02)
    assert meter.info.method == "polling@20ms" and meter.info.resolution_j is None
    meter.start()
    time.sleep(0.3)
    reading = meter.stop()
    meter.close()
    assert reading.total_j == pytest.approx(150.0 * reading.duration_s, rel=0.1)


def test_cuda_index_matching_needs_pci_order_on_multi_gpu(fake_nvml: Any) -> None:
    fake_nvml.add("GPU-0")
    fake_nvml.add("GPU-1")
    pynvml = nvml.load()
    with pytest.raises(nvml.NvmlUnavailable, match="CUDA_DEVICE_ORDER=PCI_BUS_ID"):
        nvml.resolve_handles(pynvml, [nvml.GpuRef(0)], env={})
    got = nvml.resolve_handles(
        pynvml,
        [nvml.GpuRef(0)],
        env={"CUDA_VISIBLE_DEVICES": "1", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"},
    )
    assert [u for u, _ in got] == ["GPU-1"]
    got = nvml.resolve_handles(pynvml, [nvml.GpuRef(0)], env={"CUDA_VISIBLE_DEVICES": "GPU-1"})
    assert [u for u, _ in got] == ["GPU-1"]
    with pytest.raises(nvml.NvmlUnavailable, match="NVMLError_NotFound"):
        nvml.resolve_handles(pynvml, [nvml.GpuRef(0, "GPU-missing")])
    nvml.release(pynvml)


def test_device_facts_and_fingerprint(fake_nvml: Any) -> None:
    gpu = fake_nvml.add("GPU-a", persistence=0, pids=[999999])
    pynvml = nvml.load()
    handles = nvml.resolve_handles(pynvml, [nvml.GpuRef(0, gpu.uuid)])
    codes = [code for code, _ in nvml.device_facts(pynvml, handles)]
    assert codes == ["persistence_mode_off", "other_processes"]
    assert nvml.fingerprint(pynvml, handles) == "gpu:NVIDIA H100 80GB HBM3/700W|driver550"
    nvml.release(pynvml)
