"""The transformers engine on tiny offline models (real code path, random weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.pytorch.engine import TransformersEngine


def config(model: Path, **kw: object) -> BuiltinConfig:
    base: dict[str, object] = {
        "model": str(model),
        "device": "cpu",
        "precision": "fp32",
        "n": 5,
        "max_output_tokens": 6,
        "dataset": {"source": "synthetic", "input_len": 7},
    }
    return BuiltinConfig.model_validate({**base, **kw})


@pytest.fixture(params=["tiny_gpt2", "tiny_llama"])
def model_dir(request: pytest.FixtureRequest) -> Path:
    path: Path = request.getfixturevalue(request.param)
    return path


def test_synthetic_requests_have_exact_lengths_and_are_seeded(model_dir: Path) -> None:
    cfg = config(model_dir)
    engine = TransformersEngine.load(cfg)
    first = engine.requests(cfg)
    assert len(first) == 5 and all(len(r.token_ids) == 7 for r in first)
    assert first == engine.requests(cfg)
    special = set(engine.tokenizer.all_special_ids)
    assert not any(t in special for r in first for t in r.token_ids)
    other = engine.requests(config(model_dir, random_seed=1))
    assert other != first


def test_generate_counts_input_without_padding_and_output_up_to_eos(model_dir: Path) -> None:
    cfg = config(model_dir, dataset="prompts-en", pytorch={"batch_size": 3})
    engine = TransformersEngine.load(cfg)
    requests = engine.requests(cfg)
    batches = engine.batches(requests, cfg)
    assert [len(b) for b in batches] == [3, 2]
    result = engine.generate(batches[0], cfg)
    assert [c.input_tokens for c in result.completions] == [len(r.token_ids) for r in batches[0]]
    assert all(1 <= c.output_tokens <= 6 for c in result.completions)
    assert result.wall_s > 0


def test_eos_ends_the_output_count(tiny_gpt2: Path) -> None:
    engine = TransformersEngine.load(config(tiny_gpt2))
    eos = next(iter(engine.eos_ids))
    pad = engine.tokenizer.pad_token_id
    assert engine._count_output([5, 6, eos, pad, pad]) == 3
    assert engine._count_output([5, 6, 7]) == 3


def test_streaming_measures_ttft_and_itl(tiny_llama: Path) -> None:
    cfg = config(
        tiny_llama, pytorch={"streaming": True, "batch_size": 4}, decoder={"min_new_tokens": 6}
    )
    engine = TransformersEngine.load(cfg)
    batches = engine.batches(engine.requests(cfg), cfg)
    assert all(len(b) == 1 for b in batches)  # a streamer follows one sequence
    completion = engine.generate(batches[0], cfg).completions[0]
    assert completion.ttft_s is not None and 0 < completion.ttft_s <= completion.latency_s
    assert len(completion.itl_s) == completion.output_tokens - 1


def test_sampling_is_reproducible_with_the_seed(tiny_gpt2: Path) -> None:
    cfg = config(tiny_gpt2, decoder={"temperature": 1.0})
    engine = TransformersEngine.load(cfg)

    def run() -> list[int]:
        reqs = engine.requests(cfg)
        return [c.output_tokens for c in engine.generate(reqs, cfg).completions]

    assert run() == run()


def test_bf16_precision_loads_in_bf16(tiny_llama: Path) -> None:
    import torch

    engine = TransformersEngine.load(config(tiny_llama, precision="bf16"))
    assert engine.model.dtype == torch.bfloat16


def test_missing_model_offline_is_a_clear_error(tmp_path: Path) -> None:
    from pytest_llem.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="cannot load model") as err:
        TransformersEngine.load(config(Path("no-such-org/no-such-model")))
    assert err.value.fix and "HF_HUB_OFFLINE" in err.value.fix


def test_cpu_reports_no_window_peak_and_names_the_lifetime_peak(tiny_gpt2: Path) -> None:
    cfg = config(tiny_gpt2)
    engine = TransformersEngine.load(cfg)
    engine.memory()  # the protocol's reset before the window: ru_maxrss cannot be reset
    memory = engine.memory()
    assert memory.peak_mb is None  # not the model load's peak posing as the window's
    assert memory.details["process_peak_rss_mb"] > 0 and memory.model_mb
