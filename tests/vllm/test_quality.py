"""The quality guard on real vLLM (CPU): output token ids from ``generate``, teacher-forced
top-k lists and perplexity from ``prompt_logprobs`` (the shape vLLM 0.32 returns), and an A/A
study whose quality limits pass in a real session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.study.quality import QualityConfig

GUARD = {"token_agreement": "95%", "output_length": True, "perplexity": "5%", "top_k": 3}


def test_scores_come_from_prompt_logprobs(vllm_build: Any, vllm_model: Path) -> None:
    from pytest_llem.engines.vllm.engine import VLLMEngine
    from pytest_llem.measure import quality

    cfg = BuiltinConfig.model_validate(
        {
            "model": str(vllm_model),
            "backend": "vllm",
            "device": "cpu",
            "precision": "fp16",
            "n": 4,
            "max_output_tokens": 6,
            "dataset": {"source": "synthetic", "input_len": 8},
            "quality": GUARD,
            "vllm": {"engine": {"max_num_seqs": 4, "max_model_len": 256, "enforce_eager": True}},
        }
    )
    engine = VLLMEngine.load(cfg)
    try:
        requests = engine.requests(cfg)
        outputs = engine.generate(requests, cfg).completions
        assert all(len(c.output_token_ids) == c.output_tokens > 0 for c in outputs)
        starts = [len(r.token_ids) for r in requests]
        seqs = [(*r.token_ids, *c.output_token_ids) for r, c in zip(requests, outputs, strict=True)]
        scored = engine.score(seqs, starts, 3)
        leaders = 0
        for s, c in zip(scored, outputs, strict=True):
            assert len(s.top) == len(s.logprobs) == c.output_tokens
            assert all(len(top) == 3 and len(set(top)) == 3 for top in s.top)
            assert all(lp <= 0.0 for lp in s.logprobs)
            # Greedy decoding picked each token: teacher forcing ranks it first, bar a
            # near tie that prefill and decode numerics (fp16) resolve differently.
            assert all(t in top for t, top in zip(c.output_token_ids, s.top, strict=True))
            leaders += sum(top[0] == t for t, top in zip(c.output_token_ids, s.top, strict=True))
        assert leaders >= 0.9 * sum(c.output_tokens for c in outputs)
        assert engine.context_tokens() == 255  # a request generates one token
        first = quality.perplexity(engine, QualityConfig(perplexity="5%", perplexity_tokens=600))
        again = quality.perplexity(engine, QualityConfig(perplexity="5%", perplexity_tokens=600))
        assert (
            first[2] == "builtin:perplexity_en" and first[1] == 600 - 3
        )  # windows of 255, 255, 90
        assert 50 < first[0] < 2000 and abs(again[0] / first[0] - 1) < 1e-3
    finally:
        engine.close()


def test_an_aa_study_passes_its_quality_limits(
    run_study: Callable[..., Any], vllm_study: Callable[..., str]
) -> None:
    extra = (
        "vllm: {engine: {max_num_seqs: 8, max_model_len: 256, enforce_eager: true}}\n"
        "execution: {n_cycles: 3}\n"
        "gate: {max_regression: {output_tokens_per_s: 90%}}\n"
        "quality: {token_agreement: 95%, output_length: true, perplexity: 5%, "
        "perplexity_tokens: 400}\n"
        "ab: {calibrate: true, reference: {}, candidate: {}}\n"
    )
    session = run_study(vllm_study(extra))
    items = session.report["items"]
    assert items and all(i["quality"]["perplexity"] is not None for i in items)
    assert all(len(i["quality"]["outputs"]) == 8 for i in items)
    last = items[-1]["gate"]["comparisons"]
    checks = {c["metric"]: c for c in last if c["metric"] in GUARD}
    assert {m: c["status"] for m, c in checks.items()} == {
        "token_agreement": "pass",
        "output_length": "pass",
        "perplexity": "pass",
    }, checks
    assert checks["token_agreement"]["agreement"]["exact"] >= 20  # of 3 pairs x 8 prompts
