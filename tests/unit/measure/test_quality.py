"""The quality pass after the window on real engines (tiny models): output ids only when
asked, teacher-forced top-k lists, perplexity (equal for equal weights, beyond the limit for a
corrupted weight), vLLM's prompt log probabilities (the fake; the real one: tests/vllm), and
an engine that cannot score."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.engine import BatchResult, Completion, MemoryInfo, Request
from pytest_llem.engines.pytorch.engine import TransformersEngine
from pytest_llem.gate import quality as checks
from pytest_llem.measure import quality
from pytest_llem.measure.protocol import Instruments, run
from pytest_llem.study.quality import QualityConfig

GUARD = {"token_agreement": "95%", "output_length": True, "perplexity": "5%", "top_k": 5}


def config(model: Path, **kw: object) -> BuiltinConfig:
    base: dict[str, object] = {
        "model": str(model),
        "device": "cpu",
        "precision": "fp32",
        "n": 4,
        "max_output_tokens": 6,
        "dataset": {"source": "synthetic", "input_len": 7},
        "quality": GUARD,
    }
    return BuiltinConfig.model_validate({**base, **kw})


def corrupted(model: Path, target: Path, weight: str, factor: float) -> Path:
    """A copy of the tiny GPT-2 with one weight tensor scaled (a broken quantisation scale)."""
    import torch
    import transformers

    shutil.copytree(model, target)
    loaded: Any = transformers.AutoModelForCausalLM.from_pretrained(target)
    with torch.no_grad():
        loaded.get_parameter(weight).mul_(factor)
    loaded.save_pretrained(target)
    return target


def answers(model: Path, top_k: int) -> Any:
    """The quality record of one window's worth of greedy outputs of ``model``."""
    cfg = config(model, n=8, max_output_tokens=8, quality={"token_agreement": 1.0, "top_k": top_k})
    engine = TransformersEngine.load(cfg)
    batches = engine.batches(engine.requests(cfg), cfg)
    completions = [c for b in batches for c in engine.generate(b, cfg).completions]
    return quality.of_window(engine, cfg, batches, completions, lambda p, d: None)


def test_output_ids_are_kept_only_when_token_agreement_is_checked(tiny_gpt2: Path) -> None:
    engine = TransformersEngine.load(config(tiny_gpt2))
    guarded = config(tiny_gpt2)
    plain = config(tiny_gpt2, quality=None)
    requests = engine.requests(guarded)
    kept = engine.generate(requests, guarded).completions
    assert all(len(c.output_token_ids) == c.output_tokens for c in kept)
    assert all(c.output_token_ids == () for c in engine.generate(requests, plain).completions)


def test_the_greedy_token_leads_its_own_top_k(tiny_gpt2: Path) -> None:
    cfg = config(tiny_gpt2)
    engine = TransformersEngine.load(cfg)
    requests = engine.requests(cfg)
    outputs = engine.generate(requests, cfg).completions
    seqs = [(*r.token_ids, *c.output_token_ids) for r, c in zip(requests, outputs, strict=True)]
    scored = engine.score(seqs, [len(r.token_ids) for r in requests], 5)
    for s, c in zip(scored, outputs, strict=True):
        assert len(s.top) == len(s.logprobs) == c.output_tokens
        assert all(len(top) == 5 for top in s.top)
        # Teacher forcing on the greedy output: each generated token is the best there.
        assert [top[0] for top in s.top] == list(c.output_token_ids)
        assert all(lp <= 0.0 for lp in s.logprobs)


def test_perplexity_equal_weights_pass_and_a_corrupted_weight_fails(
    tiny_gpt2: Path, tmp_path: Path
) -> None:
    guard = QualityConfig.model_validate(GUARD)
    cfg = config(tiny_gpt2)
    first = quality.perplexity(TransformersEngine.load(cfg), guard)
    again = quality.perplexity(TransformersEngine.load(cfg), guard)
    # The final norm's gain 20-fold: the same greedy tokens, far too confident.
    broken_dir = corrupted(tiny_gpt2, tmp_path / "broken", "transformer.ln_f.weight", 20.0)
    broken = quality.perplexity(TransformersEngine.load(config(broken_dir)), guard)
    ppl, tokens, name = first
    assert name == "builtin:perplexity_en" and tokens == guard.perplexity_tokens - 8
    assert 100 < ppl < 1000  # a random model over a ~300-token vocabulary
    assert again == first
    print(f"perplexity fp32 {ppl:.2f} / fp32 again {again[0]:.2f} / corrupted {broken[0]:.2f}")
    assert broken[0] > ppl * 1.05
    fine, bad = answers(tiny_gpt2, 5), answers(broken_dir, 5)
    agree = checks.compare(
        QualityConfig(token_agreement=1.0), [(None, fine, bad)], "quality", ("a", "b")
    )
    assert agree[0].status == "pass"  # token agreement alone would not have seen it

    def record(value: float) -> Any:
        from pytest_llem.results.records import QualityRecord

        return QualityRecord(output_tokens_per_request=6.0, perplexity=value, perplexity_text=name)

    only = QualityConfig(perplexity="5%")
    names = ("the reference arm", "the candidate arm")
    same = checks.compare(only, [(1, record(ppl), record(again[0]))], "paired", names)
    worse = checks.compare(only, [(1, record(ppl), record(broken[0]))], "paired", names)
    assert same[0].status == "pass" and worse[0].status == "fail"


def test_a_flipped_near_tie_is_close_and_a_broken_embedding_is_far(
    tiny_gpt2: Path, tmp_path: Path
) -> None:
    mild = corrupted(tiny_gpt2, tmp_path / "mild", "transformer.wte.weight", 1.5)
    broken = corrupted(tiny_gpt2, tmp_path / "broken", "transformer.wte.weight", 10.0)
    names = ("the reference arm", "the candidate arm")

    def agreement(candidate: Path, top_k: int) -> Any:
        guard = QualityConfig(token_agreement="95%", top_k=top_k)
        pairs = [(1, answers(tiny_gpt2, top_k), answers(candidate, top_k))]
        return checks.compare(guard, pairs, "paired", names)[0]

    near = agreement(mild, 5)
    assert near.status == "pass" and near.agreement.close > 0, near.note
    assert agreement(mild, 0).status == "fail"  # exact matches only
    far = agreement(broken, 5)
    assert far.status == "fail" and far.agreement.diverged > 0
    print(f"token agreement: wte x1.5 {near.note}; wte x10 {far.note}")
    assert f"prompt {far.agreement.first_far().prompt} at token" in far.note


def test_a_text_of_the_studys_own_is_read_relative_to_it(tiny_gpt2: Path, tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("the quick brown fox jumps over the lazy dog " * 40)
    engine = TransformersEngine.load(config(tiny_gpt2), base_dir=tmp_path)
    guard = QualityConfig(perplexity="5%", perplexity_text="mine.txt")
    ppl, _, name = quality.perplexity(engine, guard)
    assert name == "mine.txt" and ppl > 1.0
    from pytest_llem.engines.datasets import DatasetError

    with pytest.raises(DatasetError, match="does not exist"):
        quality.perplexity(engine, QualityConfig(perplexity="5%", perplexity_text="none.txt"))


def test_the_protocol_records_the_answers_after_the_window(tiny_gpt2: Path) -> None:
    from pytest_llem.energy.null import NullMeter

    cfg = config(tiny_gpt2, warmup={"n_warmup": 1}, window={"min_duration_s": 0})
    engine = TransformersEngine.load(cfg)
    phases: list[str] = []
    inst = Instruments(meter=NullMeter("test"), progress=lambda p, d: phases.append(p))
    record = run(engine, cfg, inst).quality
    assert record is not None and record.top_k == 5 and record.perplexity is not None
    assert len(record.outputs) == cfg.n
    assert all(len(o.top) == len(o.tokens) for o in record.outputs)
    assert record.output_tokens_per_request == 6.0
    assert phases.index("quality") > phases.index("measure")  # after the window
    assert run(engine, config(tiny_gpt2, quality=None), inst).quality is None


class Unscored:
    """An engine without the TokenScorer methods (a third-party backend, say)."""

    def requests(self, config: BuiltinConfig) -> list[Request]:
        return [Request((1, 2, 3))] * config.n

    def batches(self, requests: list[Request], config: BuiltinConfig) -> list[list[Request]]:
        return [requests]

    def generate(self, batch: list[Request], config: BuiltinConfig) -> BatchResult:
        return BatchResult([Completion(3, 2, 0.1, output_token_ids=(7, 8)) for _ in batch], 0.1)

    def memory(self) -> MemoryInfo:
        return MemoryInfo(None, None)


def test_an_engine_that_cannot_score_says_so() -> None:
    cfg = BuiltinConfig.model_validate({"model": "m", "device": "cpu", "n": 2, "quality": GUARD})
    engine = Unscored()
    batches = [engine.requests(cfg)]
    completions = engine.generate(batches[0], cfg).completions
    record = quality.of_window(engine, cfg, batches, completions, lambda p, d: None)
    assert record is not None and record.perplexity is None
    assert [o.tokens for o in record.outputs] == [[7, 8], [7, 8]]
    assert record.note is not None and "cannot score tokens" in record.note
    # Outputs without ids would agree exactly with each other: that is no evidence.
    blind = [Completion(3, 2, 0.1) for _ in batches[0]]
    record = quality.of_window(engine, cfg, batches, blind, lambda p, d: None)
    assert record is not None and record.outputs == []
    assert record.note is not None and record.note.startswith(quality.NO_IDS)


@pytest.mark.vllm_host
def test_vllm_scores_with_prompt_logprobs(fake_vllm: Any, tiny_llama: Path) -> None:
    from pytest_llem.engines.vllm.engine import VLLMEngine

    cfg = config(tiny_llama, backend="vllm", precision="bf16")
    engine = VLLMEngine.load(cfg)
    requests = engine.requests(cfg)
    outputs = engine.generate(requests, cfg).completions
    assert all(len(c.output_token_ids) == c.output_tokens for c in outputs)
    seqs = [(*r.token_ids, *c.output_token_ids) for r, c in zip(requests, outputs, strict=True)]
    scored = engine.score(seqs, [len(r.token_ids) for r in requests], 3)
    _, params = fake_vllm.LLM.instances[0].generate_calls[-1]
    assert params.prompt_logprobs == 3 and params.max_tokens == 1
    for seq, first, s in zip(seqs, [len(r.token_ids) for r in requests], scored, strict=True):
        # The fake ranks each prompt token first (see tests/conftest.py).
        assert [top[0] for top in s.top] == list(seq[first:])
        assert all(len(top) == 3 for top in s.top)
        assert s.logprobs == tuple(-0.1 - (t % 7) / 10 for t in seq[first:])
    assert engine.context_tokens() > 0
    beam = config(
        tiny_llama, backend="vllm", precision="bf16", vllm={"beam_search": {"beam_width": 2}}
    )
    kept = engine.generate(requests, beam).completions
    assert all(len(c.output_token_ids) == c.output_tokens > 0 for c in kept)
