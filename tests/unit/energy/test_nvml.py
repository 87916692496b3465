"""The NVML meter and device matching, against the fake pynvml."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llem.energy import nvml
from pytest_llem.energy.nvml_facts import device_facts, fingerprint
from pytest_llem.energy.nvml_meter import NvmlMeter
from tests.host import needs_no_nvml


class Clock:
    """One clock for the fake GPUs and the meter, moved by hand: windows of exact length."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_missing_library_is_a_reason_not_a_crash(fake_nvml: Any) -> None:
    fake_nvml.init_error = fake_nvml.real.NVML_ERROR_LIBRARY_NOT_FOUND
    with pytest.raises(nvml.NvmlUnavailable, match="NVMLError_LibraryNotFound"):
        nvml.load()


@needs_no_nvml
def test_real_module_on_this_machine_reports_why() -> None:
    # No GPU and no driver here: the real pynvml must give a reason, never a number.
    with pytest.raises(nvml.NvmlUnavailable, match=r"^no NVML: "):
        nvml.load()


def test_counter_meter_measures_every_used_gpu(fake_nvml: Any) -> None:
    clock = fake_nvml.clock = Clock()
    a = fake_nvml.add("GPU-a", power_w=200.0)
    fake_nvml.add("GPU-b", power_w=50.0)  # not used by the engine: must not be counted
    c = fake_nvml.add("GPU-c", power_w=100.0)
    pynvml = nvml.load()
    handles = nvml.resolve_handles(pynvml, [nvml.GpuRef(0, "GPU-a"), nvml.GpuRef(1, "GPU-c")])
    meter = NvmlMeter(pynvml, handles, 0.01, clock)
    assert meter.info.method == "counter" and meter.info.resolution_j == 0.001
    meter.start()
    clock.now += 0.3
    reading = meter.stop()
    meter.close()
    assert set(reading.per_device_j) == {a.uuid, c.uuid}
    assert reading.duration_s == pytest.approx(0.3)
    assert reading.per_device_j["GPU-a"] == pytest.approx(60.0, abs=0.002)  # 1 mJ counter steps
    assert reading.per_device_j["GPU-c"] == pytest.approx(30.0, abs=0.002)
    assert reading.total_j == pytest.approx(sum(reading.per_device_j.values()))
    assert fake_nvml.initialised == 0  # released


def test_polling_fallback_for_gpus_without_the_counter(fake_nvml: Any) -> None:
    clock = fake_nvml.clock = Clock()
    fake_nvml.add("GPU-old", power_w=150.0, supports_energy=False)
    pynvml = nvml.load()
    handles = nvml.resolve_handles(pynvml, [nvml.GpuRef(0, "GPU-old")])
    meter = NvmlMeter(pynvml, handles, 0.02, clock)
    assert meter.info.method == "polling@20ms" and meter.info.resolution_j is None
    meter.start()  # an edge sample now; the poller thread samples the same clock meanwhile
    clock.now += 0.3
    reading = meter.stop()  # and one at the closing edge
    meter.close()
    assert reading.duration_s == pytest.approx(0.3)
    assert reading.total_j == pytest.approx(150.0 * 0.3)


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
    codes = [code for code, _ in device_facts(pynvml, handles)]
    assert codes == ["persistence_mode_off", "gpu_foreign_process"]
    assert fingerprint(pynvml, handles) == "gpu:NVIDIA H100 80GB HBM3/700W|driver550"
    nvml.release(pynvml)


# A power profile that ramps and steps (W over seconds): 100 -> 400 W in 1 s, a step to 150 W.
RAMP = [(0.0, 100.0), (1.0, 400.0), (1.0, 150.0), (2.0, 150.0)]


def test_instant_power_comes_from_the_field_where_the_gpu_has_it(fake_nvml: Any) -> None:
    from tests.conftest import PeriodicPower

    clock = fake_nvml.clock = Clock()
    gpu = fake_nvml.add("GPU-a")
    gpu.profile, gpu.average_s = PeriodicPower(RAMP, 2.0), 1.0  # Ampere+: GetPowerUsage is 1 s
    pynvml = nvml.load()
    reader = nvml.PowerReader(pynvml, gpu)
    assert reader.instant and reader.source == "NVML_FI_DEV_POWER_INSTANT"
    clock.now += 0.9  # on the ramp: instant 370 W, the 1 s average only 235 W
    assert reader.watts() == pytest.approx(370.0, abs=0.002)  # whole mW, as NVML reports
    assert pynvml.nvmlDeviceGetPowerUsage(gpu) / 1000 == pytest.approx(235.0, abs=0.002)
    nvml.release(pynvml)


@pytest.mark.parametrize(
    ("setup", "why"),
    [
        (lambda fake, gpu: setattr(gpu, "supports_instant", False), "NVMLError_NotSupported"),
        (
            lambda fake, gpu: setattr(
                fake, "field_values_error", fake.real.NVML_ERROR_FUNCTION_NOT_FOUND
            ),
            "NVMLError_FunctionNotFound",
        ),
    ],
    ids=["field-not-supported", "driver-without-field-values"],
)
def test_instant_power_falls_back_to_the_average_and_says_why(
    fake_nvml: Any, setup: Any, why: str
) -> None:
    gpu = fake_nvml.add("GPU-a", power_w=250.0)
    setup(fake_nvml, gpu)
    pynvml = nvml.load()
    reader = nvml.PowerReader(pynvml, gpu)
    assert not reader.instant
    assert (
        reader.source.startswith("nvmlDeviceGetPowerUsage (a 1 s average") and why in reader.source
    )
    assert reader.watts() == pytest.approx(250.0)
    nvml.release(pynvml)


def test_field_values_are_read_through_the_member_their_type_names(fake_nvml: Any) -> None:
    real = fake_nvml.real
    value = real.c_nvmlFieldValue_t()
    value.nvmlReturn, value.valueType = real.NVML_SUCCESS, real.NVML_VALUE_TYPE_SIGNED_INT
    value.value.siVal = 123_456
    assert nvml.field_number(real, value) == 123_456.0
    value.nvmlReturn = real.NVML_ERROR_NOT_SUPPORTED
    with pytest.raises(real.NVMLError_NotSupported):
        nvml.field_number(real, value)


def test_the_counter_meter_records_its_window_edges(fake_nvml: Any) -> None:
    clock = fake_nvml.clock = Clock()
    fake_nvml.add("GPU-a")
    pynvml = nvml.load()
    meter = NvmlMeter(pynvml, nvml.resolve_handles(pynvml, [nvml.GpuRef(0, "GPU-a")]), 0.01, clock)
    meter.start()
    clock.now += 2.5
    reading = meter.stop()
    meter.close()
    assert (reading.t_start_s, reading.t_end_s) == (1000.0, 1002.5)
