"""Zeus under xdist: the plugin pins workers by GPU UUID, Zeus reads indices as integers."""

from __future__ import annotations

import os
import sys
import types
from typing import Any

import pytest

from pytest_llem.energy.zeus import ZeusMeter, ZeusUnavailable
from pytest_llem.harness.xdist import pin_worker_gpu
from tests.conftest import unset_env


class IntegerZeusMonitor:
    """Like Zeus 0.1x: ``[int(i) for i in CUDA_VISIBLE_DEVICES.split(",")]`` at init."""

    last: IntegerZeusMonitor | None = None

    def __init__(self, gpu_indices: list[int], cpu_indices: list[int]) -> None:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        nvml_all = [0, 1, 2]
        visible_indices = [int(i) for i in visible.split(",")] if visible else nvml_all
        self.nvml_indices = [visible_indices[i] for i in gpu_indices]
        IntegerZeusMonitor.last = self


@pytest.fixture
def integer_zeus(monkeypatch: pytest.MonkeyPatch) -> type[IntegerZeusMonitor]:
    zeus = types.ModuleType("zeus")
    monitor = types.ModuleType("zeus.monitor")
    monitor.ZeusMonitor = IntegerZeusMonitor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "zeus", zeus)
    monkeypatch.setitem(sys.modules, "zeus.monitor", monitor)
    return IntegerZeusMonitor


def worker(workerid: str) -> Any:
    return types.SimpleNamespace(workerinput={"workerid": workerid})


@pytest.mark.parametrize(("workerid", "nvml_index"), [("gw0", 0), ("gw1", 1), ("gw5", 2)])
def test_zeus_measures_the_gpu_the_worker_is_pinned_to(
    fake_nvml: Any,
    integer_zeus: type[IntegerZeusMonitor],
    monkeypatch: pytest.MonkeyPatch,
    workerid: str,
    nvml_index: int,
) -> None:
    unset_env(monkeypatch, "LLEM_NO_GPU_PINNING")
    for uuid in ("GPU-a", "GPU-b", "GPU-c"):
        fake_nvml.add(uuid)
    uuid = pin_worker_gpu(worker(workerid))  # type: ignore[arg-type]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == uuid
    meter = ZeusMeter([0], [str(uuid)])
    assert integer_zeus.last is not None and integer_zeus.last.nvml_indices == [nvml_index]
    assert os.environ["CUDA_VISIBLE_DEVICES"] == uuid  # restored for everything else
    assert meter.labels == {0: uuid}
    assert fake_nvml.initialised == 0


def test_integer_entries_are_left_alone(
    fake_nvml: Any, integer_zeus: type[IntegerZeusMonitor], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    ZeusMeter([1], ["GPU-a"])
    assert integer_zeus.last is not None and integer_zeus.last.nvml_indices == [0]
    assert "nvmlInit" not in fake_nvml.calls


def test_an_unknown_uuid_is_a_reason_not_a_wrong_gpu(
    fake_nvml: Any, integer_zeus: type[IntegerZeusMonitor], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_nvml.add("GPU-a")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-0123")
    with pytest.raises(ZeusUnavailable, match="Zeus reads the variable as integers"):
        ZeusMeter([0], ["MIG-0123"])
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "MIG-0123"
