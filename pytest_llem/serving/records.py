"""What a serving run recorded: one record per request, and the run around them (pure).

Times are seconds on the client's clock (``time.perf_counter`` unless another is injected),
so differences are intervals and the meters' edges can be matched to them. The definitions
follow ``vllm bench serve`` (vllm/benchmarks/lib/endpoint_request_func.py): a request's TTFT
runs from when it was sent to its first chunk that carries a choice, its end-to-end latency to
its last such chunk, and every gap between such chunks is one inter-token latency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_llem.serving.prometheus import PollResult


@dataclass
class RequestRecord:
    """One request of a run, as the client saw it.

    Attributes:
        index: position in the run (0-based); the prompt is ``prompts[index % len(prompts)]``.
        due_s: when the arrival schedule released it (run start plus its offset).
        send_s: when it was posted (later than ``due_s`` while the concurrency cap held it);
            None if it was never sent.
        first_token_s: time of its first chunk that carried a choice.
        chunk_s: times of every chunk that carried a choice, the first included.
        chunk_tokens: tokens in each of those chunks (1 unless the server reported more).
        end_s: time of the last chunk that carried a choice (vLLM's end of the request).
        done_s: when the request was over: its stream ended, it failed, or it was cancelled.
        prompt_tokens: the server's ``usage.prompt_tokens``, if it sent usage.
        output_tokens: the server's ``usage.completion_tokens``, else the tokens counted in
            chunks.
        error: why it failed (HTTP status and body excerpt, refused connection, timeout,
            connection closed mid-stream), None on success.
        status: the HTTP status, if a response came.
        finish_reason: the server's last ``finish_reason`` (``length``, ``stop``...).
        text: the generated text.
        token_ids: output token ids, when the server returned them.
        logprobs: the sampled token's logprob at each step, when asked for.
        top_logprobs: the top-k logprobs at each step, when asked for.
        cancelled: it was in flight when the run stopped (deadline, server gone).
    """

    index: int
    due_s: float
    send_s: float | None = None
    first_token_s: float | None = None
    chunk_s: list[float] = field(default_factory=list)
    chunk_tokens: list[int] = field(default_factory=list)
    end_s: float | None = None
    done_s: float | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None
    status: int | None = None
    finish_reason: str | None = None
    text: str = ""
    token_ids: list[int] | None = None
    logprobs: list[float | None] | None = None
    top_logprobs: list[dict[str, float]] | None = None
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        """Sent, answered and not failed: vLLM's ``success`` (a first token came)."""
        return self.error is None and self.first_token_s is not None

    @property
    def ttft_s(self) -> float | None:
        """Time to first token, from the send."""
        if self.send_s is None or self.first_token_s is None:
            return None
        return self.first_token_s - self.send_s

    @property
    def latency_s(self) -> float | None:
        """End-to-end latency: from the send to the last chunk that carried a token."""
        if self.send_s is None or self.end_s is None:
            return None
        return self.end_s - self.send_s

    @property
    def itls_s(self) -> list[float]:
        """Every gap between consecutive token-carrying chunks."""
        return [b - a for a, b in zip(self.chunk_s[:-1], self.chunk_s[1:], strict=True)]

    @property
    def tokens_out(self) -> int:
        """Output tokens: the server's count where it gave one, else those counted in chunks."""
        if self.output_tokens is not None:
            return self.output_tokens
        return sum(self.chunk_tokens)

    @property
    def tpot_s(self) -> float | None:
        """vLLM's time per output token: ``(latency - ttft) / (output tokens - 1)``; None for
        a failed request or one of a single token (vLLM then counts 0 for goodput only)."""
        latency, ttft = self.latency_s, self.ttft_s
        if not self.ok or latency is None or ttft is None or self.tokens_out < 2:
            return None
        return (latency - ttft) / (self.tokens_out - 1)


@dataclass
class LoadRun:
    """A whole serving run: its settings, its requests and the client's own cost.

    Attributes:
        records: one per request, in index order (requests never sent included).
        warmup: the warmup requests' records, sent before ``start_s`` and not measured.
        target_rate: requests/s asked for (``math.inf``: all at once).
        arrival: the arrival process (``poisson``, ``constant``, ``gamma``).
        burstiness: the gamma shape the schedule used.
        concurrency: the cap on requests in flight, None for none.
        start_s: the schedule's origin (the first send is due at ``start_s`` plus its offset).
        end_s: when the last request was over.
        cpu_s: the client process's CPU time over the run (``time.process_time``: every
            thread of the process, so a meter sampler or gauge poller thread counts too).
        loop_cpu_s: CPU time of the thread that ran the event loop (``time.thread_time``).
        edges: the time of each edge fired (``run_start``, ``start``, ``end``, ``run_end``).
        edge_call_s: how long each ``on_edge`` callback took (it runs inside the loop, so it
            delays the chunks that arrive meanwhile).
        stopped: why the run stopped before every request was over (``deadline``,
            ``server gone: ...``), None if it ran to the end.
        gauges: the server's scraped gauges (a ``prometheus.PollResult``), if asked for.
    """

    records: list[RequestRecord]
    target_rate: float
    arrival: str
    burstiness: float
    concurrency: int | None
    start_s: float
    end_s: float
    cpu_s: float
    loop_cpu_s: float
    warmup: list[RequestRecord] = field(default_factory=list)
    edges: dict[str, float] = field(default_factory=dict)
    edge_call_s: dict[str, float] = field(default_factory=dict)
    stopped: str | None = None
    gauges: PollResult | None = None

    @property
    def duration_s(self) -> float:
        """The run's length, from the schedule's origin to the last request over."""
        return self.end_s - self.start_s

    @property
    def sent(self) -> list[RequestRecord]:
        """The requests that were sent."""
        return [r for r in self.records if r.send_s is not None]

    @property
    def completed(self) -> list[RequestRecord]:
        """The requests that succeeded."""
        return [r for r in self.records if r.ok]

    @property
    def errored(self) -> list[RequestRecord]:
        """The requests that were sent and failed."""
        return [r for r in self.records if r.send_s is not None and not r.ok]
