"""The local runner's full measuring path on a (scripted) CUDA engine with the fake NVML.

A CUDA engine cannot run here, so the engine is a scripted implementation of pytest-llem's
own Engine interface that burns real time; NVML is the fake pynvml.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.devices import GpuRef
from pytest_llem.energy import nvml
from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.cache import ModelCache
from pytest_llem.engines.engine import BatchResult, Completion, MemoryInfo, Request
from pytest_llem.runners.local import execute, gpu_instruments
from pytest_llem.runners.run_spec import IdleSpec, RunSpec


class CudaEngine:
    def __init__(self, uuids: list[str]) -> None:
        self.uuids = uuids

    def requests(self, config: BuiltinConfig) -> list[Request]:
        return [Request((1, 2)) for _ in range(config.n)]

    def batches(self, requests: list[Request], config: BuiltinConfig) -> list[list[Request]]:
        return [requests]

    def generate(self, batch: list[Request], config: BuiltinConfig) -> BatchResult:
        time.sleep(0.05)
        return BatchResult([Completion(2, 4, 0.05) for _ in batch], 0.05)

    def memory(self) -> MemoryInfo:
        return MemoryInfo(peak_mb=100.0, model_mb=50.0)

    def devices(self) -> list[GpuRef]:
        return [GpuRef(i, u) for i, u in enumerate(self.uuids)]

    def close(self) -> None:
        pass


def spec(tmp_path: Path, **config: object) -> RunSpec:
    cfg = BuiltinConfig.model_validate(
        {
            "model": "m",
            "device": "cuda",
            "n": 4,
            "precision": "fp16",
            "window": {"min_duration_s": 0.5},
            "warmup": {"n_warmup": 1},
            "thermal": {"window_s": 0.5, "max_s": 5},
            "energy": {"sample_interval_s": 0.05},
            **config,
        }
    )
    return RunSpec(
        nodeid="x::y",
        point_id="y",
        config_hash="h",
        config=cfg,
        idle=IdleSpec(per_device_w={"GPU-a": 40.0, "GPU-b": 30.0}, measured_at=time.time()),
        timeseries_file=str(tmp_path / "ts.jsonl"),
    )


def test_cuda_item_measures_energy_on_its_gpus(fake_nvml: Any, tmp_path: Path) -> None:
    fake_nvml.add("GPU-a", power_w=250.0, persistence=0)
    fake_nvml.add("GPU-b", power_w=90.0)
    fake_nvml.add("GPU-unused", power_w=500.0)
    cache = ModelCache(loader=lambda c, b: CudaEngine(["GPU-a", "GPU-b"]), key=lambda c: "k")  # type: ignore[arg-type,return-value]
    phases: list[str] = []
    m = execute(spec(tmp_path), cache, lambda phase, detail: phases.append(phase))
    assert m.energy.source == "nvml" and m.energy.method == "counter"
    assert set(m.energy.per_device_j) == {"GPU-a", "GPU-b"}
    duration = m.metrics.duration_s
    assert m.metrics.energy_j == pytest.approx(340.0 * duration, rel=0.25)
    assert m.energy.baseline_w == 70.0
    assert m.metrics.energy_adjusted_j == pytest.approx(
        m.metrics.energy_j - 70.0 * duration, rel=0.25
    )
    assert m.metrics.energy_per_output_token_j == pytest.approx(
        m.metrics.energy_j / m.metrics.output_tokens
    )
    assert m.sampler is not None and m.sampler.power_w["max"] == 250.0
    assert m.thermal is not None and m.thermal.stabilised
    assert "persistence_mode_off" in [w.code for w in m.warnings]
    assert (tmp_path / "ts.jsonl").exists()
    assert {"load", "warmup", "measure"} <= set(phases)
    assert fake_nvml.initialised == 0  # every NVML reference released


def test_cuda_item_without_nvml_records_why(fake_nvml: Any, tmp_path: Path) -> None:
    fake_nvml.init_error = fake_nvml.real.NVML_ERROR_LIBRARY_NOT_FOUND
    cache = ModelCache(loader=lambda c, b: CudaEngine(["GPU-a"]), key=lambda c: "k")  # type: ignore[arg-type,return-value]
    m = execute(spec(tmp_path), cache, lambda p, d: None)
    assert m.energy.source is None and m.metrics.energy_j is None
    assert "NVMLError_LibraryNotFound" in (m.energy.reason or "")
    assert m.sampler is None and m.thermal is None


def test_a_failure_inside_the_instruments_propagates_unchanged(
    fake_nvml: Any, tmp_path: Path
) -> None:
    # A GPU lost mid-window raises NvmlUnavailable in the body: it must reach the item as
    # itself, not as "generator didn't stop after throw()", and NVML must be released.
    fake_nvml.add("GPU-a")

    def lose_the_gpu() -> None:
        with gpu_instruments(spec(tmp_path), [GpuRef(0, "GPU-a")]) as opened:
            sampler, thermal, _, watch = opened
            assert sampler is not None and thermal is not None and watch is not None
            raise nvml.NvmlUnavailable("GPU lost")

    with pytest.raises(nvml.NvmlUnavailable, match="GPU lost"):
        lose_the_gpu()
    assert fake_nvml.initialised == 0


def test_instruments_that_cannot_open_leave_the_item_without_them(
    fake_nvml: Any, tmp_path: Path
) -> None:
    fake_nvml.add("GPU-a")
    with gpu_instruments(spec(tmp_path), [GpuRef(0, "GPU-unknown")]) as opened:
        assert opened == (None, None, [], None)
    assert fake_nvml.initialised == 0
