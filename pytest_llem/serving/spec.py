"""What a serving run sends: the request bodies, the schedule, the bounds (pure).

The body is the OpenAI completions API's, streamed, with ``stream_options.include_usage`` as
``vllm bench serve`` sends it; ``ignore_eos`` and ``min_tokens`` (vLLM's extensions) fix the
output length so arms compare like with like, and ``return_token_ids`` (vLLM) keeps the
output tokens for the quality checks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llem.serving.errors import ServingError


@dataclass(frozen=True)
class LoadSpec:
    """What to send, how fast, and within what bounds.

    Attributes:
        base_url: the OpenAI API root, e.g. ``http://127.0.0.1:8000/v1``; requests go to
            ``{base_url}/completions``.
        model: the served model name.
        prompts: text or token-id prompts; request ``i`` sends ``prompts[i % len(prompts)]``.
        max_tokens: output tokens per request (one number, or one per prompt).
        num_requests: requests in the measured run (default: one per prompt).
        rate: requests/s, ``math.inf`` to send all at once.
        arrival: ``poisson``, ``constant`` or ``gamma`` (see ``arrivals.send_offsets``).
        burstiness: the gamma shape, for ``gamma``.
        concurrency: the cap on requests in flight, None for none.
        warmup_requests: requests sent (under the cap) before the measured run.
        fixed_output: ask for exactly ``max_tokens`` (``ignore_eos`` and ``min_tokens``) so
            arms compare like with like.
        temperature: sampling temperature (0: greedy); None leaves it to the server.
        logprobs: top-k logprobs per token to ask for, None for none.
        token_ids: ask vLLM for output token ids (``return_token_ids``).
        continuous_usage: ask vLLM for usage in every chunk (tokens per chunk exact).
        extra_body: more request fields, merged last.
        headers: more request headers.
        request_timeout_s: each request's bound, from its send to its last byte.
        deadline_s: the measured run's bound from its start; None for none.
        seed: seeds the arrival schedule.
        window: ``(k, m)``: fire ``start`` when the k-th request has its first token and
            ``end`` when the m-th request is over (``window.window_counts`` gives ML.ENERGY's).
        metrics_url: the server's ``/metrics`` to scrape during the run, None for none.
        metrics_interval_s: time between scrapes.
    """

    base_url: str
    model: str
    prompts: Sequence[str | Sequence[int]]
    max_tokens: int | Sequence[int] = 128
    num_requests: int | None = None
    rate: float = math.inf
    arrival: str = "poisson"
    burstiness: float = 1.0
    concurrency: int | None = None
    warmup_requests: int = 0
    fixed_output: bool = True
    temperature: float | None = 0.0
    logprobs: int | None = None
    token_ids: bool = False
    continuous_usage: bool = False
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    request_timeout_s: float = 600.0
    deadline_s: float | None = None
    seed: int = 0
    window: tuple[int, int] | None = None
    metrics_url: str | None = None
    metrics_interval_s: float = 0.25

    @property
    def n(self) -> int:
        """Requests in the measured run."""
        return self.num_requests if self.num_requests is not None else len(self.prompts)

    def payload(self, index: int) -> bytes:
        """The JSON body of request ``index`` (built before the run, off the hot path)."""
        prompt = self.prompts[index % len(self.prompts)]
        max_tokens = (
            self.max_tokens if isinstance(self.max_tokens, int)
            else self.max_tokens[index % len(self.max_tokens)]
        )  # fmt: skip
        stream_options: dict[str, bool] = {"include_usage": True}
        if self.continuous_usage:
            stream_options["continuous_usage_stats"] = True
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt if isinstance(prompt, str) else list(prompt),
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": stream_options,
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.fixed_output:
            body["ignore_eos"] = True
            body["min_tokens"] = max_tokens
        if self.logprobs is not None:
            body["logprobs"] = self.logprobs
        if self.token_ids:
            body["return_token_ids"] = True
        body.update(self.extra_body)
        return json.dumps(body).encode()


def check(spec: LoadSpec) -> None:
    """Refuse a spec that cannot run, naming the value and the fix."""
    if not spec.prompts:
        raise ServingError("a serving run needs at least one prompt", fix="give prompts")
    if spec.n < 1:
        raise ServingError(f"num_requests must be at least 1, got {spec.n}")
    if spec.concurrency is not None and spec.concurrency < 1:
        raise ServingError(f"concurrency must be at least 1 or None, got {spec.concurrency}")
    if spec.window is not None:
        k, m = spec.window
        if not (1 <= k <= spec.n and 1 <= m <= spec.n):
            raise ServingError(
                f"window edges (k={k} first tokens, m={m} finished) outside 1..{spec.n} requests",
                fix="use window.window_counts(num_requests, concurrency) or more requests",
            )
