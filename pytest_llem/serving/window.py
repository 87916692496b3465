"""ML.ENERGY's steady-state window over a run's records, and the run's figures (pure).

The window (ML.ENERGY benchmark, ``RequestTracker`` in mlenergy/benchmark/llm/benchmark.py)
opens when ``B`` requests (the batch the server holds: ``max_num_seqs``, or the client's
concurrency cap) have their first token, since the server has then ramped up; it closes when
``N - B - 1`` requests are over (failed ones count, as there), since from then on fewer than
``B`` remain and the server ramps down; the ``- 1`` closes it slightly early. Energy per
output token is the window's energy over the tokens that arrived inside it; energy per
request is that times the mean output length of the completed requests, as ML.ENERGY does.

Where figures are taken:
- latency distributions (TTFT, TPOT, ITL, E2EL: mean and p50/p90/p99, numpy's linear
  percentiles) over every completed request of the run, exactly as ``vllm bench serve``'s
  ``calculate_metrics``, so the two agree on the same run;
- throughputs and goodput over the window; the same over the whole run (vLLM's duration)
  with a ``_run`` suffix;
- ``achieved_rate``: requests sent over the time from the schedule's origin to the last send
  (the schedule puts the last at ``N / rate``, so on time it equals ``target_rate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_llem.serving.errors import ServingError
from pytest_llem.serving.records import LoadRun, RequestRecord
from pytest_llem.stats.descriptive import mean, percentile

PERCENTILES = (50, 90, 99)


@dataclass(frozen=True)
class Window:
    """A steady-state window: its edges, the counts that set them, the requests inside.

    Attributes:
        start_s: when the ``k``-th request had its first token.
        end_s: when the ``m``-th request was over.
        k: first tokens that open it.
        m: requests over that close it.
        requests: indices of the requests with a token inside it.
    """

    start_s: float
    end_s: float
    k: int
    m: int
    requests: tuple[int, ...]

    @property
    def duration_s(self) -> float:
        """The window's length."""
        return self.end_s - self.start_s


@dataclass(frozen=True)
class NoWindow:
    """Why a run has no steady-state window, and what would give it one."""

    reason: str
    fix: str


@dataclass(frozen=True)
class Slo:
    """Service-level objectives for goodput, in milliseconds (None: not judged)."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2el_ms: float | None = None

    def met(self, rec: RequestRecord) -> bool:
        """vLLM's rule: every given objective at or above the request's figure (a request of
        one token has a TPOT of 0)."""
        ttft, latency = rec.ttft_s, rec.latency_s
        if not rec.ok or ttft is None or latency is None:
            return False
        tpot = rec.tpot_s or 0.0
        pairs = ((self.ttft_ms, ttft), (self.tpot_ms, tpot), (self.e2el_ms, latency))
        return all(limit is None or limit / 1000.0 >= value for limit, value in pairs)


def window_counts(num_requests: int, batch: int) -> tuple[int, int]:
    """ML.ENERGY's ``(k, m)`` for ``N`` requests and a batch ``B``: ``(B, N - B - 1)``.

    Raises:
        ServingError: too few requests for any window, with the numbers and the fix.
    """
    m = num_requests - batch - 1
    if batch < 1 or m < 1:
        raise ServingError(
            f"no steady-state window with num_requests={num_requests} and a batch of {batch}: "
            f"it opens at the {batch}-th first token and closes when num_requests - {batch} - 1"
            f" = {m} requests are over",
            fix=f"send at least {max(batch, 1) + 2} requests (several times {batch} for a "
            "window of useful length)",
        )
    return batch, m


def find_window(records: Sequence[RequestRecord], k: int, m: int) -> Window | NoWindow:
    """The window the client's ``start``/``end`` edges marked, from the records alone."""
    firsts = sorted(r.first_token_s for r in records if r.first_token_s is not None)
    overs = sorted(r.done_s for r in records if r.done_s is not None and not r.cancelled)
    fix = "send more requests (num_requests several times the batch), or lower the batch"
    if len(firsts) < k:
        return NoWindow(f"only {len(firsts)} requests had a first token, fewer than {k}", fix)
    if len(overs) < m:
        return NoWindow(f"only {len(overs)} requests were over, fewer than {m}", fix)
    start, end = firsts[k - 1], overs[m - 1]
    if end <= start:
        return NoWindow(
            f"the window's end ({m} requests over, at {end - start:+.3f} s from its start) came"
            f" before its start ({k} first tokens): the server never held {k} requests at once",
            fix,
        )
    inside = tuple(r.index for r in records if any(start <= t <= end for t in r.chunk_s))
    return Window(start, end, k, m, inside)


def metrics(
    run: LoadRun,
    window: Window | NoWindow | None,
    slo: Slo | None = None,
    energy_j: float | None = None,
) -> dict[str, float | None]:
    """The run's figures, by the names the results carry (None where undefined).

    Args:
        run: the recorded run.
        window: its steady-state window; a ``NoWindow`` or None leaves window figures None.
        slo: objectives for ``goodput``; None leaves goodput None.
        energy_j: energy the meters read over the window; None leaves energy figures None.
    """
    done = run.completed
    out: dict[str, float | None] = {}
    out.update(_distribution("ttft_ms", [r.ttft_s for r in done]))
    out.update(_distribution("tpot_ms", [r.tpot_s for r in done]))
    out.update(_distribution("itl_ms", [gap for r in done for gap in r.itls_s]))
    out.update(_distribution("e2el_ms", [r.latency_s for r in done]))
    out.update(_counts(run))
    out.update(_run_throughputs(run, slo))
    out.update(_window_figures(run, window if isinstance(window, Window) else None, slo))
    out.update(_energy(out, energy_j))
    out.update(_client(run))
    if isinstance(window, Window):
        out.update(in_flight(run.records, window.start_s, window.end_s))
        if run.gauges is not None:
            out.update(run.gauges.summary(window.start_s, window.end_s))
    return out


def _distribution(name: str, seconds: Sequence[float | None]) -> dict[str, float | None]:
    values = [v * 1000.0 for v in seconds if v is not None]
    out: dict[str, float | None] = {f"{name}_mean": mean(values) if values else None}
    for q in PERCENTILES:
        out[f"{name}_p{q}"] = percentile(values, q) if values else None
    return out


def _counts(run: LoadRun) -> dict[str, float | None]:
    done = run.completed
    return {
        "completed_requests": float(len(done)),
        "errored_requests": float(len(run.errored)),
        "unsent_requests": float(len(run.records) - len(run.sent)),
        "total_input_tokens": float(sum(r.prompt_tokens or 0 for r in done)),
        "total_output_tokens": float(sum(r.tokens_out for r in done)),
        "run_s": run.duration_s,
    }


def _rate(count: float, seconds: float) -> float | None:
    return count / seconds if seconds > 0 else None


def _run_throughputs(run: LoadRun, slo: Slo | None) -> dict[str, float | None]:
    """vLLM's throughputs: completed requests' totals over the whole run."""
    done, dur = run.completed, run.duration_s
    return {
        "request_throughput_run": _rate(len(done), dur),
        "output_tokens_per_s_run": _rate(sum(r.tokens_out for r in done), dur),
        "input_tokens_per_s_run": _rate(sum(r.prompt_tokens or 0 for r in done), dur),
        "goodput_run": _rate(sum(slo.met(r) for r in done), dur) if slo else None,
    }


def window_tokens(rec: RequestRecord, start_s: float, end_s: float) -> float:
    """The request's output tokens that arrived inside ``[start_s, end_s]``: its chunks'
    tokens there, scaled to its final count where the server's usage differs."""
    counted = sum(rec.chunk_tokens)
    inside = sum(
        n for t, n in zip(rec.chunk_s, rec.chunk_tokens, strict=True) if start_s <= t <= end_s
    )
    if counted == 0:
        return 0.0
    return inside * (rec.tokens_out / counted)


def _window_figures(
    run: LoadRun, window: Window | None, slo: Slo | None
) -> dict[str, float | None]:
    keys = (
        "steady_state_s", "window_requests", "window_output_tokens", "window_input_tokens",
        "request_throughput", "output_tokens_per_s", "input_tokens_per_s", "goodput",
    )  # fmt: skip
    if window is None:
        return dict.fromkeys(keys)
    start, end, dur = window.start_s, window.end_s, window.duration_s
    over = [r for r in run.completed if r.done_s is not None and start < r.done_s <= end]
    tokens_out = sum(window_tokens(r, start, end) for r in run.records)
    # A prompt's tokens count where its prefill ended: at its first token.
    tokens_in = sum(
        r.prompt_tokens or 0
        for r in run.records
        if r.first_token_s is not None and start <= r.first_token_s <= end
    )
    return {
        "steady_state_s": dur,
        "window_requests": float(len(over)),
        "window_output_tokens": tokens_out,
        "window_input_tokens": float(tokens_in),
        "request_throughput": _rate(len(over), dur),
        "output_tokens_per_s": _rate(tokens_out, dur),
        "input_tokens_per_s": _rate(tokens_in, dur),
        "goodput": _rate(sum(slo.met(r) for r in over), dur) if slo else None,
    }


def _energy(figures: dict[str, float | None], energy_j: float | None) -> dict[str, float | None]:
    """ML.ENERGY's split of the window's energy over its tokens."""
    out: dict[str, float | None] = dict.fromkeys(
        ("energy_per_output_token_j", "energy_per_token_j", "energy_per_request_j")
    )
    tokens_out = figures.get("window_output_tokens") or 0.0
    tokens_in = figures.get("window_input_tokens") or 0.0
    if energy_j is None or tokens_out <= 0:
        return out
    per_out = energy_j / tokens_out
    out["energy_per_output_token_j"] = per_out
    out["energy_per_token_j"] = energy_j / (tokens_out + tokens_in)
    completed, total = figures.get("completed_requests"), figures.get("total_output_tokens")
    if completed and total is not None:
        out["energy_per_request_j"] = per_out * total / completed
    return out


def _client(run: LoadRun) -> dict[str, float | None]:
    """Achieved against target rate, and what the client itself cost."""
    sent = run.sent
    last = max((r.send_s for r in sent if r.send_s is not None), default=None)
    span = (last - run.start_s) if last is not None else 0.0
    lags = [(r.send_s - r.due_s) * 1000.0 for r in sent if r.send_s is not None]
    finite = run.target_rate != float("inf")
    return {
        "target_rate": run.target_rate if finite else None,
        "achieved_rate": _rate(len(sent), span),
        "send_lag_ms_p50": percentile(lags, 50) if lags else None,
        "send_lag_ms_p99": percentile(lags, 99) if lags else None,
        "send_lag_ms_max": max(lags) if lags else None,
        "client_cpu_ms_per_request": run.cpu_s * 1000.0 / len(sent) if sent else None,
        "client_loop_cpu_ms_per_request": run.loop_cpu_s * 1000.0 / len(sent) if sent else None,
        "client_cpu_fraction": _rate(run.cpu_s, run.duration_s),
    }


def in_flight(
    records: Sequence[RequestRecord], start_s: float, end_s: float
) -> dict[str, float | None]:
    """Requests in flight as the client saw them (sent, not yet over), time-weighted mean and
    max over ``[start_s, end_s]``; it counts requests the server still queues."""
    events: list[tuple[float, int]] = []
    for r in records:
        if r.send_s is None or r.done_s is None:
            continue
        lo, hi = max(r.send_s, start_s), min(r.done_s, end_s)
        if hi > lo:
            events += [(lo, 1), (hi, -1)]
    if end_s <= start_s:
        return {"in_flight_mean": None, "in_flight_max": None}
    events.sort(key=lambda e: (e[0], e[1]))
    level, peak, area, prev = 0, 0, 0.0, start_s
    for t, delta in events:
        area += level * (t - prev)
        level += delta
        peak = max(peak, level)
        prev = t
    return {"in_flight_mean": area / (end_s - start_s), "in_flight_max": float(peak)}
