"""The installed vLLM itself: its API against our readings and our fake, its platform, and
one engine in this process (its processes, memory, the GPU-process warning, its shutdown)."""

from __future__ import annotations

import dataclasses
import inspect
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.vllm import source as vllm_compat


@pytest.fixture(scope="module")
def real(vllm_build: Any) -> Any:
    import vllm

    return vllm


def real_engine_args(vllm: Any) -> set[str]:
    from vllm.engine.arg_utils import EngineArgs

    fields = {f.name for f in dataclasses.fields(EngineArgs) if f.init} - {"model"}
    params = inspect.signature(vllm.LLM.__init__).parameters.values()
    named = {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    return fields | (named - {"self", "model"})


def real_sampling_defaults(vllm: Any) -> dict[str, Any]:
    params = inspect.signature(vllm.SamplingParams).parameters.values()
    return {p.name: p.default for p in params if not p.name.startswith("_")}


def test_source_reading_matches_the_imported_classes(real: Any) -> None:
    api = vllm_compat.installed_api()
    assert api is not None
    assert set(api.engine_args) == real_engine_args(real)
    defaults = real_sampling_defaults(real)
    assert set(api.sampling_args) == set(defaults)
    literal = {k: v for k, v in api.sampling_defaults.items() if v is not None}
    assert all(defaults[k] == v for k, v in literal.items() if not isinstance(v, dict)), literal
    assert api.top_k_disabled() == defaults["top_k"] == 0


def test_the_fake_vllm_does_not_drift(real: Any, fake_vllm_parts: Any) -> None:
    fake = fake_vllm_parts
    accepted = real_engine_args(real)
    assert fake.ENGINE_ARGS - accepted == set(), "the fake accepts engine args vLLM does not"
    defaults = real_sampling_defaults(real)
    assert fake.SAMPLING_FIELDS - set(defaults) == set(), "the fake accepts unknown sampling args"
    fake_defaults = fake.FakeSamplingParams().__dict__
    assert {k: defaults[k] for k in fake_defaults} == fake_defaults
    beam_real = inspect.signature(real.sampling_params.BeamSearchParams).parameters
    beam_fake = inspect.signature(fake.FakeBeamSearchParams).parameters
    assert {n: beam_real[n].default for n in beam_fake} == {
        n: p.default for n, p in beam_fake.items()
    }
    generate = inspect.signature(real.LLM.generate).parameters
    assert set(inspect.signature(fake.FakeLLM.generate).parameters) <= set(generate)
    assert callable(real.LLM.beam_search) and callable(real.LLM.get_tokenizer)
    from vllm.v1.metrics.stats import RequestStateStats

    v1_fields = {f.name for f in dataclasses.fields(RequestStateStats)}
    assert v1_fields >= fake.V1_METRICS
    from vllm.v1.engine.core_client import SyncMPClient

    assert "timeout" in inspect.signature(SyncMPClient.shutdown).parameters


def test_preflight_names_the_build_and_refuses_cuda(real: Any, vllm_model: Path) -> None:
    from pytest_llem.harness.preflight import check_point
    from pytest_llem.preflight.host import Host

    host = Host()
    cfg = {"model": str(vllm_model), "backend": "vllm", "precision": "fp16"}
    cpu = BuiltinConfig.model_validate({**cfg, "device": "cpu"})
    assert check_point(cpu, None, host, "null", local=True) == []
    cuda = BuiltinConfig.model_validate({**cfg, "device": "cuda"})
    checks = check_point(cuda, None, host, "null", local=True)
    backend = [c for c in checks if c.kind == "backend"]
    found = f"needs a CUDA build of vLLM; found vLLM {vllm_compat.installed_version()}"
    assert backend and found in backend[0].message
    assert "platform cpu" in backend[0].message


def test_one_engine_in_process(real: Any, vllm_model: Path, fake_nvml: Any) -> None:
    """Load, generate, measure memory, ask NVML about its processes, shut down."""
    import psutil

    from pytest_llem.devices import GpuRef
    from pytest_llem.energy import nvml
    from pytest_llem.energy.nvml_facts import device_facts
    from pytest_llem.engines.vllm.engine import VLLMEngine

    cfg = BuiltinConfig.model_validate(
        {
            "model": str(vllm_model),
            "backend": "vllm",
            "device": "cpu",
            "n": 4,
            "max_output_tokens": 4,
            "dataset": {"source": "synthetic", "input_len": 8},
            "vllm": {"engine": {"max_num_seqs": 4, "max_model_len": 128, "enforce_eager": True}},
        }
    )
    engine = VLLMEngine.load(cfg)
    try:
        pids = engine.processes.pids
        names = sorted(psutil.Process(p).name() for p in pids)
        assert names == ["VLLM::EngineCore", "VLLM::Worker"]
        result = engine.generate(engine.requests(cfg), cfg)
        assert len(result.completions) == 4
        memory = engine.memory()
        # The engine processes' lifetime peak, named as such; no window peak on CPU.
        assert memory.peak_mb is None and memory.details["process_peak_rss_mb"] > 100
        # NVML (faked: no GPU here) lists the engine's processes on the GPU: they are ours.
        gpu = fake_nvml.add("GPU-a", pids=[os.getpid(), *pids])
        pynvml = nvml.load()
        handles = nvml.resolve_handles(pynvml, [GpuRef(0, gpu.uuid)])
        assert device_facts(pynvml, handles) == []
        gpu.pids.append(os.getppid())
        assert [c for c, _ in device_facts(pynvml, handles)] == ["gpu_foreign_process"]
        nvml.release(pynvml)
    finally:
        engine.close()
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)


def test_collection_checks_arguments_against_the_installed_vllm(
    pytester: pytest.Pytester, vllm_study: Any
) -> None:
    extra = (
        "passthrough_kwargs: {max_num_seq: 4}\n"
        "experiments:\n  - {vllm: {engine: {swap_space: 4}}}\n  - {n: 2}\n"
        "  - {vllm: {sampling: {presence_penalti: 0.5, skip_special_tokens: false}}}\n"
    )
    pytester.makefile(".yaml", study_bad=vllm_study(extra))
    pytester.makepyfile(
        probe="import sys, pytest\n"
        "code = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider'])\n"
        "heavy = [m for m in ('torch', 'vllm') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(code)\n"
    )
    result = pytester.run(sys.executable, "probe.py")
    out = result.stdout.str()
    assert result.ret == 2, out  # a collection error
    assert "HEAVY []" in out  # checked without importing vLLM (or torch)
    version = vllm_compat.installed_version()
    assert f"the installed vLLM {version} has no argument 'max_num_seq'" in out
    assert "did you mean 'max_num_seqs'?" in out
    # Undeclared vllm.sampling keys are checked against the installed SamplingParams too.
    assert "has no argument 'sampling.presence_penalti'" in out
    assert "did you mean 'presence_penalty'?" in out
    assert "no argument 'sampling.skip_special_tokens'" not in out  # a real SamplingParams field
    if (
        "swap_space"
        not in (vllm_compat.installed_api() or vllm_compat.VllmApi(frozenset(), {}, "")).engine_args
    ):
        assert "has no argument 'swap_space'" in out  # removed from EngineArgs (0.32)
