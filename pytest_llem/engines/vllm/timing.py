"""Per-request timing from vLLM's request metrics, and the completions built from it.

A figure vLLM does not give is None with the reason, never the batch's wall time: requests of
one ``generate`` call finish at different times, so the wall time is nobody's latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_llem.engines.engine import Completion, Request


@dataclass(frozen=True)
class RequestTiming:
    """One request's timing from vLLM's metrics; None figures carry the reason."""

    latency_s: float | None
    ttft_s: float | None = None
    tpot_s: float | None = None
    note: str | None = None


NO_METRICS = (
    "vLLM returned no per-request metrics (stats are off: this vLLM's disable_log_stats could "
    "not be set, e.g. its source was not readable): no per-request latency or TTFT"
)


def request_timing(metrics: Any) -> RequestTiming:
    """Latency, TTFT and time per output token of one request from vLLM's metrics.

    - V1 (``RequestStateStats``, filled when stats are on): TTFT is ``first_token_latency``
      (arrival to first token, frontend clock); latency adds the decode time between the
      first and last token (engine-core clock). V1 keeps no per-token times, so the gaps are
      known only as their mean per request: time per output token, not per-token ITL.
    - V0 (``RequestMetrics``): arrival, first token and finish times.
    - No metrics, or metrics without timestamps: no figures, and why. The batch's wall time
      is not this request's latency (requests of one batch finish at different times).
    """
    if metrics is None:
        return RequestTiming(None, note=NO_METRICS)
    if hasattr(metrics, "first_token_latency"):
        first = float(metrics.first_token_latency)
        if first <= 0.0:
            return RequestTiming(
                None, note="vLLM's request metrics have no first-token time (first_token_latency 0)"
            )
        decode = max(0.0, float(metrics.last_token_ts) - float(metrics.first_token_ts))
        tokens = int(getattr(metrics, "num_generation_tokens", 0))
        tpot = decode / (tokens - 1) if tokens > 1 else None
        return RequestTiming(first + decode, first, tpot)
    arrival = getattr(metrics, "arrival_time", None)
    end = getattr(metrics, "finished_time", None) or getattr(metrics, "last_token_time", None)
    if arrival is None or end is None:
        return RequestTiming(None, note="vLLM's request metrics have no arrival or finish time")
    first_time = getattr(metrics, "first_token_time", None)
    ttft = first_time - arrival if first_time is not None else None
    return RequestTiming(end - arrival, ttft)


def completion(output: Any, keep_ids: bool = False) -> Completion:
    """The ``Completion`` of one ``RequestOutput`` (with its output token ids if ``keep_ids``)."""
    first = output.outputs[0]
    timing = request_timing(getattr(output, "metrics", None))
    return Completion(
        len(output.prompt_token_ids),
        len(first.token_ids),
        timing.latency_s,
        ttft_s=timing.ttft_s,
        tpot_s=timing.tpot_s,
        timing_note=timing.note,
        output_token_ids=tuple(int(t) for t in first.token_ids) if keep_ids else (),
    )


BEAM_NOTE = "vLLM's beam search returns no per-request timing: no per-request latency"


def beam_completion(request: Request, output: Any, keep_ids: bool = False) -> Completion:
    """The ``Completion`` of one beam-search result (untimed: vLLM returns none)."""
    best = output.sequences[0]
    # A beam sequence's tokens include the prompt.
    produced = list(best.tokens[len(request.token_ids) :])
    return Completion(
        len(request.token_ids),
        len(produced),
        None,
        timing_note=BEAM_NOTE,
        output_token_ids=tuple(int(t) for t in produced) if keep_ids else (),
    )
