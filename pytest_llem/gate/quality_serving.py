"""The quality record of a serving item, from what the streaming client recorded (pure).

The serving path measures requests it sends to an OpenAI-compatible server rather than
generate calls, so it builds its ``QualityRecord`` here, from each completed request's output
token ids and top logprobs (``serving.records.RequestRecord``: ``token_ids`` with vLLM's
``return_token_ids``, ``top_logprobs`` with ``logprobs: k`` and, so that they name token ids
rather than text, ``return_tokens_as_token_ids``: keys ``"token_id:123"``). Request ``i`` used
prompt ``i % prompts``; each prompt's first completed request stands for it, as an offline
item's first pass does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_llem.results.records import PromptOutput, QualityRecord
from pytest_llem.study.quality import QualityConfig

TOKEN_ID_PREFIX = "token_id:"


def token_id(key: str | int) -> int | None:
    """The token id a top-logprobs key names (``"token_id:123"`` or an int), else None."""
    if isinstance(key, int):
        return key
    if key.startswith(TOKEN_ID_PREFIX) and key[len(TOKEN_ID_PREFIX) :].lstrip("-").isdigit():
        return int(key[len(TOKEN_ID_PREFIX) :])
    return None


def top_ids(steps: Sequence[Mapping[Any, float]], top_k: int) -> list[list[int]] | None:
    """Each step's ``top_k`` most likely token ids, best first (None: keys are not ids)."""
    out = []
    for step in steps:
        ranked = sorted(step.items(), key=lambda kv: -kv[1])[:top_k]
        ids = [token_id(key) for key, _ in ranked]
        if any(i is None for i in ids):
            return None
        out.append([i for i in ids if i is not None])
    return out


def from_requests(
    checks: QualityConfig | None,
    *,
    prompts: int,
    index: Sequence[int],
    output_tokens: Sequence[int],
    token_ids: Sequence[Sequence[int] | None],
    top_logprobs: Sequence[Sequence[Mapping[Any, float]] | None] | None = None,
) -> QualityRecord | None:
    """A serving item's answers for the ``quality:`` checks (None without quality limits).

    Args:
        checks: the config's ``quality:`` section.
        prompts: the distinct prompts; request ``index[j]`` used prompt ``index[j] % prompts``.
        index: each completed request's position in the run.
        output_tokens: each completed request's output tokens (``RequestRecord.tokens_out``).
        token_ids: each completed request's output token ids (None: the server sent none).
        top_logprobs: each completed request's top logprobs per step (None: not asked).

    A serving item has no perplexity (the client asks for no prompt log probabilities): a
    ``perplexity`` limit then says so, inconclusive. The caller may set ``perplexity`` on the
    record (``model_copy``) where it measures one.
    """
    if checks is None or not checks.active:
        return None
    mean = sum(output_tokens) / len(output_tokens) if output_tokens else 0.0
    notes = []
    if checks.perplexity_max is not None:
        notes.append("a serving item measures no perplexity (no prompt log probabilities)")
    outputs: list[PromptOutput] = []
    top_k = 0
    if checks.records_tokens:
        outputs, top_k, why = _outputs(checks, prompts, index, token_ids, top_logprobs)
        if why:
            notes.append(why)
    return QualityRecord(
        output_tokens_per_request=mean,
        outputs=outputs,
        top_k=top_k,
        note="; ".join(notes) or None,
    )


def _outputs(
    checks: QualityConfig,
    prompts: int,
    index: Sequence[int],
    token_ids: Sequence[Sequence[int] | None],
    top_logprobs: Sequence[Sequence[Mapping[Any, float]] | None] | None,
) -> tuple[list[PromptOutput], int, str | None]:
    """(per prompt its first completed request's output, the top-k kept, why something is
    missing); no outputs at all when some prompt has none (nothing to compare it with)."""
    first: dict[int, int] = {}
    for j, i in enumerate(index):
        if token_ids[j] is not None:
            first.setdefault(i % prompts, j)
    lacking = [p for p in range(prompts) if p not in first]
    if lacking:
        return (
            [],
            0,
            (
                f"no output token ids for prompt {lacking[0]} (ask the server for them: vLLM's "
                "return_token_ids)"
            ),
        )
    outputs, top_k, why = [], checks.top_k, None
    for p in range(prompts):
        j = first[p]
        steps = top_logprobs[j] if top_logprobs is not None else None
        top = top_ids(steps, checks.top_k) if steps and checks.top_k else None
        if checks.top_k and top is None and why is None:
            why = (
                "no top logprobs keyed by token id (ask for logprobs: top_k and vLLM's "
                "return_tokens_as_token_ids)"
            )
        outputs.append(PromptOutput(tokens=[int(t) for t in token_ids[j] or ()], top=top or []))
        if top:
            top_k = min(top_k, min(len(step) for step in top))
    return outputs, (top_k if why is None else 0), why
