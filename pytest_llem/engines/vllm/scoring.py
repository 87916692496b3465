"""Teacher-forced scoring with vLLM's prompt log probabilities (the quality checks' pass
after the window).

Each sequence is sent as a prompt with ``SamplingParams(prompt_logprobs=k, max_tokens=1)``:
vLLM returns, for every prompt position after the first, a mapping of token id to ``Logprob``
holding the prompt's own token (with its rank) and the ``k`` most likely ones (ranks 1..k).
vLLM skips the prefix cache for such requests, so every position is computed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_llem.engines.engine import Scored
from pytest_llem.engines.vllm import source


def score_kwargs(top_k: int, api: source.VllmApi | None) -> dict[str, Any]:
    """``SamplingParams`` keywords of a scoring request: one greedy token, prompt logprobs.

    ``detokenize: False`` where the installed vLLM has it: the scores need ids, and decoding
    the top-k tokens of every position would be work for nothing.
    """
    kwargs: dict[str, Any] = {
        "n": 1,
        "max_tokens": 1,
        "temperature": 0.0,
        "prompt_logprobs": max(0, top_k),
    }
    if api is not None and "detokenize" in api.sampling_args:
        kwargs["detokenize"] = False
    return kwargs


def _rank_of(entry: Any) -> float:
    rank = getattr(entry, "rank", None)
    return float(rank) if rank is not None else float("inf")


def scored(output: Any, seq: Sequence[int], start: int, top_k: int) -> Scored:
    """The ``Scored`` of one ``RequestOutput`` of a scoring request.

    Raises:
        ValueError: vLLM returned no prompt log probabilities for a position.
    """
    positions = output.prompt_logprobs
    if positions is None:
        raise ValueError("vLLM returned no prompt_logprobs")
    chosen: list[float] = []
    top: list[tuple[int, ...]] = []
    for pos in range(start, len(seq)):
        entries: Mapping[int, Any] | None = positions[pos]
        if not entries or seq[pos] not in entries:
            raise ValueError(f"vLLM returned no log probability for prompt position {pos}")
        chosen.append(float(entries[seq[pos]].logprob))
        if top_k > 0:
            ranked = sorted(entries.items(), key=lambda kv: (_rank_of(kv[1]), -kv[1].logprob))
            top.append(tuple(int(t) for t, e in ranked if _rank_of(e) <= top_k)[:top_k])
    return Scored(tuple(chosen), tuple(top))


def context_limit(llm: Any, tokenizer: Any) -> int:
    """The longest sequence vLLM scores: ``max_model_len`` (else the tokenizer's limit, else
    2048) less the one token a request must generate."""
    model_config = getattr(
        getattr(getattr(llm, "llm_engine", None), "vllm_config", None), "model_config", None
    )
    value = getattr(model_config, "max_model_len", None)
    if not (isinstance(value, int) and value > 1):
        limit = getattr(tokenizer, "model_max_length", None)
        value = limit if isinstance(limit, int) and 1 < limit < 1_000_000 else 2048
    return value - 1
