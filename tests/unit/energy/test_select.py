"""Meter selection: auto picks per device, explicit sources fail loudly, null says why."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.devices import GpuRef
from pytest_llem.energy.null import NullMeter
from pytest_llem.energy.nvml_meter import NvmlMeter
from pytest_llem.energy.rapl import RaplMeter
from pytest_llem.energy.select import EnergyUnavailable, probe, select_meter
from pytest_llem.engines.builtin import BuiltinConfig


def cfg(device: str = "cpu", backend: str = "auto") -> BuiltinConfig:
    return BuiltinConfig(model="m", device=device, energy={"backend": backend})  # type: ignore[arg-type]


def test_auto_on_cpu_uses_rapl_or_says_why(fake_rapl: Path, tmp_path: Path) -> None:
    assert isinstance(select_meter(cfg(), None, [], fake_rapl), RaplMeter)
    null = select_meter(cfg(), None, [], tmp_path / "nope")
    assert isinstance(null, NullMeter) and null.info.reason and "no RAPL" in null.info.reason


def test_auto_on_cuda_uses_nvml(fake_nvml: Any) -> None:
    fake_nvml.add("GPU-a")
    meter = select_meter(cfg("cuda"), None, [GpuRef(0, "GPU-a")])
    assert isinstance(meter, NvmlMeter)
    meter.close()
    fake_nvml.init_error = fake_nvml.real.NVML_ERROR_DRIVER_NOT_LOADED
    null = select_meter(cfg("cuda"), None, [GpuRef(0, "GPU-a")])
    assert isinstance(null, NullMeter) and "DriverNotLoaded" in (null.info.reason or "")


def test_explicit_source_that_is_missing_is_an_error(tmp_path: Path, fake_nvml: Any) -> None:
    with pytest.raises(EnergyUnavailable, match="rapl is unavailable") as err:
        select_meter(cfg(backend="rapl"), None, [], tmp_path)
    assert err.value.fix
    fake_nvml.init_error = fake_nvml.real.NVML_ERROR_LIBRARY_NOT_FOUND
    with pytest.raises(EnergyUnavailable, match="nvml is unavailable"):
        select_meter(cfg("cuda"), "nvml", [GpuRef(0)])
    assert fake_nvml.initialised == 0


def test_null_disables_and_override_wins(fake_rapl: Path) -> None:
    meter = select_meter(cfg(backend="rapl"), "null", [], fake_rapl)
    assert isinstance(meter, NullMeter) and "disabled" in (meter.info.reason or "")
    assert meter.stop().total_j is None


def test_probe(tmp_path: Path, fake_rapl: Path) -> None:
    assert probe("rapl", fake_rapl) is None
    assert "no RAPL" in (probe("rapl", tmp_path) or "")


class FakeZeusMonitor:
    """Mirrors zeus.monitor.ZeusMonitor: begin/end windows by key, Measurement(time, gpu_energy)."""

    energy: dict[int, float] = {}

    def __init__(
        self, gpu_indices: list[int] | None = None, cpu_indices: list[int] | None = None
    ) -> None:
        self.gpu_indices = gpu_indices or []
        self.windows: dict[str, float] = {}

    def begin_window(self, key: str, sync_execution: bool = True) -> None:
        if key in self.windows:
            raise ValueError(f"Measurement window '{key}' already exists")
        self.windows[key] = 0.0

    def end_window(self, key: str, sync_execution: bool = True, cancel: bool = False) -> Any:
        if key not in self.windows:
            raise ValueError(f"Measurement window '{key}' does not exist")
        del self.windows[key]
        return types.SimpleNamespace(time=1.5, gpu_energy=dict(self.energy))


@pytest.fixture
def fake_zeus(monkeypatch: pytest.MonkeyPatch) -> type[FakeZeusMonitor]:
    zeus = types.ModuleType("zeus")
    monitor = types.ModuleType("zeus.monitor")
    monitor.ZeusMonitor = FakeZeusMonitor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "zeus", zeus)
    monkeypatch.setitem(sys.modules, "zeus.monitor", monitor)
    return FakeZeusMonitor


def test_zeus_windows_and_time_only_is_no_energy(fake_zeus: type[FakeZeusMonitor]) -> None:
    fake_zeus.energy = {0: 12.0}
    meter = select_meter(cfg("cuda", "zeus"), None, [GpuRef(0, "GPU-a")])
    meter.start()
    reading = meter.stop()
    assert reading.total_j == 12.0 and reading.per_device_j == {"GPU-a": 12.0}
    fake_zeus.energy = {}
    meter.start()
    empty = meter.stop()
    assert empty.total_j is None and "time-only" in (empty.reason or "")


def test_zeus_missing_is_an_explicit_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zeus", None)
    monkeypatch.setitem(sys.modules, "zeus.monitor", None)
    with pytest.raises(EnergyUnavailable, match="zeus"):
        select_meter(cfg("cuda", "zeus"), None, [GpuRef(0)])


def test_a_crosscheck_source_reads_the_same_window(fake_nvml: Any, fake_rapl: Path) -> None:
    from pytest_llem.energy.crosscheck import CrosscheckMeter

    fake_nvml.add("GPU-a", power_w=200.0)
    config = BuiltinConfig(
        model="m", device="cuda", energy={"backend": "nvml", "crosscheck": "rapl"}
    )  # type: ignore[arg-type]
    meter = select_meter(config, None, [GpuRef(0, "GPU-a")], fake_rapl)
    assert isinstance(meter, CrosscheckMeter) and meter.info.source == "nvml"
    meter.start()
    (fake_rapl / "intel-rapl:0" / "energy_uj").write_text("5001000\n")  # +5 J on the package
    reading = meter.stop()
    meter.close()
    assert reading.total_j is not None and reading.crosscheck is not None
    assert reading.crosscheck.source == "rapl" and reading.crosscheck.total_j == pytest.approx(5.0)
    assert reading.t_start_s is not None and reading.t_end_s is not None
    assert fake_nvml.initialised == 0  # both released
    absent = BuiltinConfig(
        model="m", device="cuda", energy={"backend": "nvml", "crosscheck": "zeus"}
    )  # type: ignore[arg-type]
    with pytest.raises(EnergyUnavailable, match=r"energy\.backend zeus is unavailable"):
        select_meter(absent, None, [GpuRef(0, "GPU-a")])
    assert fake_nvml.initialised == 0  # the item's meter was released when the second failed
