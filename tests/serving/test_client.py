"""The load generator against the real test server, a subprocess with known delays."""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable

import pytest

from pytest_llem.serving import (
    LoadSpec,
    ServingError,
    Window,
    find_window,
    metrics,
    run_load,
    validity,
    wait_ready,
    window_counts,
)
from pytest_llem.serving.window import in_flight
from tests.serving.conftest import TestServer

Start = Callable[..., TestServer]
PROMPTS = ["one two three four", "five six seven eight nine"]


def _spec(server: TestServer, **kw: object) -> LoadSpec:
    fields: dict[str, object] = {
        "base_url": server.base_url,
        "model": "test-model",
        "prompts": PROMPTS,
    }
    fields.update(kw)
    return LoadSpec(**fields)  # type: ignore[arg-type]


def test_ttft_and_tpot_match_the_servers_known_delays(serving_server: Start) -> None:
    """The issue's done-when: 50 ms to the first token and 10 ms between tokens, reported
    within 15% at p50, for requests arriving as a Poisson process."""
    server = serving_server("--first-token-ms", "50", "--itl-ms", "10")
    run = run_load(_spec(server, max_tokens=20, num_requests=24, rate=20.0, seed=1))
    figures = metrics(run, None)
    drift = {k: figures[k] for k in ("ttft_ms_p50", "ttft_ms_p99", "tpot_ms_p50", "itl_ms_p50")}
    assert figures["completed_requests"] == 24, drift
    assert figures["ttft_ms_p50"] == pytest.approx(50.0, rel=0.15), drift
    assert figures["tpot_ms_p50"] == pytest.approx(10.0, rel=0.15), drift
    assert figures["itl_ms_p50"] == pytest.approx(10.0, rel=0.15), drift
    assert all(r.tokens_out == 20 and len(r.chunk_s) == 20 for r in run.records)
    assert run.cpu_s > 0 and figures["client_cpu_ms_per_request"] is not None


def test_fixed_output_lengths_are_honoured(serving_server: Start) -> None:
    server = serving_server("--first-token-ms", "5", "--itl-ms", "1", "--eos-after", "5")
    fixed = run_load(_spec(server, max_tokens=12, num_requests=4, fixed_output=True))
    free = run_load(_spec(server, max_tokens=12, num_requests=4, fixed_output=False))
    assert [(r.tokens_out, r.finish_reason) for r in fixed.records] == [(12, "length")] * 4
    assert [(r.tokens_out, r.finish_reason) for r in free.records] == [(5, "stop")] * 4
    assert [r.prompt_tokens for r in fixed.records] == [4, 5, 4, 5]


def test_concurrency_cap_is_honoured_as_the_server_sees_it(serving_server: Start) -> None:
    server = serving_server("--first-token-ms", "30", "--itl-ms", "5")
    run = run_load(_spec(server, max_tokens=8, num_requests=12, concurrency=3))
    assert server.gauges()["llem_test:max_in_flight"] == 3.0
    assert in_flight(run.records, run.start_s, run.end_s)["in_flight_max"] == 3.0
    # Held by the cap, later requests were sent well after they were due (all at t = 0).
    assert max(r.send_s - r.due_s for r in run.records if r.send_s is not None) > 0.05


def test_errors_are_recorded_per_request_and_the_run_goes_on(serving_server: Start) -> None:
    server = serving_server(
        "--first-token-ms", "5", "--itl-ms", "2", "--fault", "status500:1", "--fault", "close:3"
    )
    # Constant arrivals 50 ms apart: the server sees the requests in index order.
    run = run_load(_spec(server, max_tokens=6, num_requests=6, rate=20.0, arrival="constant"))
    errors = {r.index: r.error for r in run.records if r.error is not None}
    assert set(errors) == {1, 3}, errors
    assert errors[1].startswith("HTTP 500: ") and "injected failure 1" in errors[1]
    assert errors[3].startswith("connection closed mid-stream after 2 chunks")
    assert run.records[1].status == 500 and run.stopped is None
    figures = metrics(run, None)
    assert figures["completed_requests"] == 4 and figures["errored_requests"] == 2
    names = [name for name, _ in validity(run, None, figures)]
    assert names == ["errored_requests"]


def test_a_hung_request_times_out_alone(serving_server: Start) -> None:
    server = serving_server("--first-token-ms", "5", "--itl-ms", "1", "--fault", "hang:0")
    spec = _spec(
        server, max_tokens=4, num_requests=3, rate=20.0, arrival="constant", request_timeout_s=1.0
    )
    run = run_load(spec)
    assert run.records[0].error is not None and run.records[0].error.startswith("timeout")
    assert [r.ok for r in run.records] == [False, True, True]
    assert 0.9 < run.records[0].done_s - run.records[0].send_s < 3.0  # type: ignore[operator]


def test_edges_fire_in_order_at_the_windows_moments(serving_server: Start) -> None:
    server = serving_server("--first-token-ms", "20", "--itl-ms", "5", "--max-num-seqs", "4")
    calls: list[tuple[str, float, float]] = []
    clock = time.perf_counter
    k, m = window_counts(16, 4)
    spec = _spec(
        server, max_tokens=10, num_requests=16, window=(k, m),
        metrics_url=f"{server.root}/metrics", metrics_interval_s=0.02,
    )  # fmt: skip
    run = run_load(spec, on_edge=lambda name, t: calls.append((name, t, clock())), clock=clock)
    assert [c[0] for c in calls] == ["run_start", "start", "end", "run_end"]
    times = [c[1] for c in calls]
    assert times == sorted(times) and run.start_s == times[0] and times[-1] >= run.end_s
    assert all(0 <= called - t < 0.5 for _, t, called in calls)  # synchronous, at the moment
    firsts = sorted(r.first_token_s for r in run.records if r.first_token_s is not None)
    overs = sorted(r.done_s for r in run.records if r.done_s is not None)
    assert run.edges["start"] == firsts[k - 1] and run.edges["end"] == overs[m - 1]
    window = find_window(run.records, k, m)
    assert isinstance(window, Window)
    assert (window.start_s, window.end_s) == (run.edges["start"], run.edges["end"])
    figures = metrics(run, window)
    assert figures["running_max"] is not None and figures["running_max"] <= 4
    assert figures["steady_state_s"] == pytest.approx(window.duration_s)
    assert figures["window_output_tokens"] is not None and figures["window_output_tokens"] > 0


def test_the_deadline_bounds_the_run(serving_server: Start) -> None:
    server = serving_server("--first-token-ms", "100", "--itl-ms", "10")
    spec = _spec(
        server, max_tokens=50, num_requests=100, rate=4.0, arrival="constant", deadline_s=1.0
    )
    before = time.perf_counter()
    run = run_load(spec)
    took = time.perf_counter() - before
    assert run.stopped == "deadline"
    assert took < 1.0 + 2.0, took
    sent = run.sent
    assert 1 <= len(sent) <= 5
    assert any(r.cancelled and r.error == "cancelled: deadline" for r in sent)
    unsent = [r for r in run.records if r.send_s is None]
    assert len(unsent) == 100 - len(sent) and unsent[0].error == "not sent: deadline"
    assert "stopped_early" in [n for n, _ in validity(run, None, metrics(run, None))]


def test_a_run_where_every_request_errors_says_so(serving_server: Start) -> None:
    server = serving_server("--fail-all", "503")
    with pytest.raises(ServingError, match="every one of the 4 requests sent errored") as info:
        run_load(_spec(server, max_tokens=4, num_requests=4))
    assert info.value.run is not None
    assert all(r.status == 503 for r in info.value.run.records)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_server_that_is_gone_stops_the_run() -> None:
    base = f"http://127.0.0.1:{_free_port()}/v1"
    spec = LoadSpec(base_url=base, model="m", prompts=PROMPTS, num_requests=50, rate=100.0)
    with pytest.raises(ServingError, match="server gone: connection refused") as info:
        run_load(spec)
    assert info.value.run is not None and info.value.run.stopped is not None
    assert len(info.value.run.sent) < 50


def test_wait_ready(serving_server: Start) -> None:
    server = serving_server()
    assert wait_ready(server.base_url, deadline_s=10) < 10
    before = time.monotonic()
    with pytest.raises(ServingError, match=r"not ready after .* last check: .*Connection refused"):
        wait_ready(f"http://127.0.0.1:{_free_port()}/v1", deadline_s=0.5, interval_s=0.1)
    assert time.monotonic() - before < 5


def test_a_server_without_metrics_is_not_exposed_and_the_run_goes_on(serving_server: Start) -> None:
    server = serving_server("--no-metrics", "--first-token-ms", "5", "--itl-ms", "1")
    run = run_load(
        _spec(server, max_tokens=4, num_requests=4, metrics_url=f"{server.root}/metrics")
    )
    assert run.gauges is not None and not run.gauges.exposed
    assert run.gauges.reason == "not exposed: HTTP 404"
    assert len(run.completed) == 4


def test_logprobs_and_token_ids_are_kept(serving_server: Start) -> None:
    server = serving_server("--first-token-ms", "5", "--itl-ms", "1")
    run = run_load(_spec(server, max_tokens=5, num_requests=2, logprobs=2, token_ids=True))
    rec = run.records[0]
    assert rec.token_ids == [100, 101, 102, 103, 104]
    assert rec.logprobs == [-0.5] * 5 and rec.top_logprobs is not None
    assert [len(top) for top in rec.top_logprobs] == [2] * 5
    assert rec.text == " t0 t1 t2 t3 t4"


def test_warmup_requests_are_kept_apart(serving_server: Start) -> None:
    server = serving_server("--first-token-ms", "5", "--itl-ms", "1")
    run = run_load(_spec(server, max_tokens=3, num_requests=4, warmup_requests=3, concurrency=2))
    assert len(run.warmup) == 3 and all(r.ok for r in run.warmup)
    assert all(r.done_s is not None and r.done_s <= run.start_s for r in run.warmup)
    assert server.gauges()["llem_test:arrived_total"] == 7


def test_an_edge_callback_that_fails_stops_the_run(serving_server: Start) -> None:
    server = serving_server("--first-token-ms", "5", "--itl-ms", "1")

    def broken(name: str, t: float) -> None:
        if name == "start":
            raise RuntimeError("meter unreadable")

    spec = _spec(server, max_tokens=3, num_requests=8, rate=math.inf, window=(2, 5))
    with pytest.raises(RuntimeError, match="meter unreadable"):
        run_load(spec, on_edge=broken)
