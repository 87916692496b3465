"""Teacher-forced scoring with a transformers model (the quality checks' pass after the
window): each token's log probability given the tokens before it, and the top-k there."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llem.engines.engine import Scored
from pytest_llem.errors import EngineError


def score_sequences(
    torch: Any, model: Any, sequences: Sequence[Sequence[int]], starts: Sequence[int], top_k: int
) -> list[Scored]:
    """One forward pass per sequence (no padding, so no mask can shift a position)."""
    scored = []
    for seq, first in zip(sequences, starts, strict=True):
        ids = torch.tensor([list(seq)], device=model.device)
        try:
            with torch.inference_mode():
                # The logits at position j predict token j + 1.
                logits = model(input_ids=ids).logits[0, first - 1 : len(seq) - 1]
        except (RuntimeError, ValueError, IndexError) as exc:
            raise EngineError(
                f"scoring a sequence of {len(seq)} tokens failed: {exc}",
                "check the quality: settings (perplexity_tokens) against the model",
            ) from exc
        logp = torch.log_softmax(logits.float(), dim=-1)
        chosen = logp.gather(1, ids[0, first:].unsqueeze(1)).squeeze(1).tolist()
        top: tuple[tuple[int, ...], ...] = ()
        if top_k > 0:
            best = logp.topk(min(top_k, int(logp.shape[-1])), dim=-1).indices.tolist()
            top = tuple(tuple(int(t) for t in row) for row in best)
        scored.append(Scored(tuple(float(x) for x in chosen), top))
    return scored


def context_limit(model_config: Any, tokenizer: Any) -> int:
    """The longest sequence a model takes: its config's position limit, else the tokenizer's
    (2048 when neither says)."""
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(model_config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 1_000_000 else 2048
