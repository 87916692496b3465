"""What the quality checks need of an item: the window's outputs, then one scoring pass.

The measured window is not changed by the checks: its generate calls return what they always
return, and the output token ids of its first pass are kept (one pass holds every prompt once).
After the window, unmeasured, the engine scores (``TokenScorer``) what the checks need beyond
the ids: the top-k token ids at every output position, each conditioned on the output's own
prefix (so at a first divergence both sides were scored after the same tokens), and the
perplexity of a fixed text in windows of at most ``PERPLEXITY_WINDOW`` tokens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pytest_llem.engines.datasets import DatasetError
from pytest_llem.engines.engine import Completion, Engine, Request, TokenScorer
from pytest_llem.engines.scoring import chunks
from pytest_llem.measure.phases import Progress
from pytest_llem.results.records import PromptOutput, QualityRecord
from pytest_llem.study.experiment import ExperimentConfig
from pytest_llem.study.quality import QualityConfig

PERPLEXITY_WINDOW = 512  # tokens per scored window (fewer where the model takes fewer)
NO_SCORER = "this engine cannot score tokens (it has no TokenScorer methods)"
NO_IDS = "the engine returned no output token ids for this decoding"


def of_window(
    engine: Engine,
    config: ExperimentConfig,
    batches: Sequence[Sequence[Request]],
    completions: Sequence[Completion],
    progress: Progress,
) -> QualityRecord | None:
    """The quality record of a window just measured (None when no quality limit is set):
    its first pass's outputs, scored after it. ``batches``: one pass, in order."""
    requests = [r for batch in batches for r in batch]
    record = first_pass(completions, len(requests), config)
    return complete(engine, config, requests, record, progress)


def first_pass(
    completions: Sequence[Completion], prompts: int, config: ExperimentConfig
) -> QualityRecord | None:
    """The window's outputs as the checks need them (None when no quality limit is set).

    ``prompts``: the requests of one pass (the window repeats them; the first pass is kept).
    """
    checks = config.quality
    if checks is None or not checks.active:
        return None
    per_request = sum(c.output_tokens for c in completions) / max(1, len(completions))
    first = completions[:prompts]
    if not checks.records_tokens:
        return QualityRecord(output_tokens_per_request=per_request)
    if any(c.output_tokens and not c.output_token_ids for c in first):
        # Empty lists on both sides would agree exactly: no ids is no evidence, and is said.
        return QualityRecord(output_tokens_per_request=per_request, note=NO_IDS)
    outputs = [PromptOutput(tokens=list(c.output_token_ids)) for c in first]
    return QualityRecord(output_tokens_per_request=per_request, outputs=outputs)


def complete(
    engine: Engine,
    config: ExperimentConfig,
    requests: Sequence[Request],
    record: QualityRecord | None,
    progress: Progress,
) -> QualityRecord | None:
    """``record`` with the scores its checks need (top-k lists, perplexity), or a note saying
    why they are missing. Raises what the engine raises (an EngineError, a DatasetError)."""
    checks = config.quality
    if record is None or checks is None:
        return record
    wants_top = checks.records_tokens and checks.top_k > 0 and bool(record.outputs)
    wants_ppl = checks.perplexity_max is not None
    if not (wants_top or wants_ppl):
        return record
    if not isinstance(engine, TokenScorer):
        note = "; ".join(filter(None, [record.note, f"{NO_SCORER}: no top-k lists, no perplexity"]))
        return record.model_copy(update={"note": note})
    update: dict[str, object] = {}
    if wants_top:
        progress("quality", f"scoring {len(record.outputs)} outputs (top-{checks.top_k})")
        update["outputs"] = _with_top(engine, requests, record.outputs, checks.top_k)
        update["top_k"] = checks.top_k
    if wants_ppl:
        progress("quality", "perplexity")
        value, tokens, name = perplexity(engine, checks)
        update.update(perplexity=value, perplexity_tokens=tokens, perplexity_text=name)
    return record.model_copy(update=update)


def _with_top(
    scorer: TokenScorer, requests: Sequence[Request], outputs: Sequence[PromptOutput], top_k: int
) -> list[PromptOutput]:
    """Each output with the top-k ids at each of its positions (an empty output has none)."""
    todo = [i for i, out in enumerate(outputs) if out.tokens]
    scored = scorer.score(
        [(*requests[i].token_ids, *outputs[i].tokens) for i in todo],
        [len(requests[i].token_ids) for i in todo],
        top_k,
    )
    tops = {i: [list(t) for t in s.top] for i, s in zip(todo, scored, strict=True)}
    return [PromptOutput(tokens=out.tokens, top=tops.get(i, [])) for i, out in enumerate(outputs)]


def perplexity(scorer: TokenScorer, checks: QualityConfig) -> tuple[float, int, str]:
    """(perplexity, tokens scored, the text's name) of ``quality.perplexity_text``: exp of the
    mean negative log probability of every token after the first of each window."""
    ids, name = scorer.text_tokens(checks.perplexity_text)
    window = min(scorer.context_tokens(), PERPLEXITY_WINDOW)
    parts = chunks(ids, checks.perplexity_tokens, window)
    if not parts:
        raise DatasetError(
            f"quality.perplexity_text: {name} is shorter than two tokens", "use a longer text"
        )
    logprobs = [x for s in scorer.score(parts, [1] * len(parts), 0) for x in s.logprobs]
    return math.exp(-sum(logprobs) / len(logprobs)), len(logprobs), name
