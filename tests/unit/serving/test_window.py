"""The steady-state window and the figures, on hand-made records checked by hand."""

from __future__ import annotations

import pytest

from pytest_llem.serving.errors import ServingError
from pytest_llem.serving.prometheus import PollResult, Scrape
from pytest_llem.serving.records import LoadRun, RequestRecord
from pytest_llem.serving.validity import validity
from pytest_llem.serving.window import (
    NoWindow,
    Slo,
    Window,
    find_window,
    in_flight,
    metrics,
    window_counts,
)


def _rec(
    index: int, due: float, send: float, chunks: list[float], done: float, **kw: object
) -> RequestRecord:
    rec = RequestRecord(index=index, due_s=due, send_s=send, done_s=done, chunk_s=chunks)
    rec.chunk_tokens = [1] * len(chunks)
    if chunks:
        rec.first_token_s, rec.end_s = chunks[0], chunks[-1]
        rec.output_tokens = len(chunks)
    for key, value in kw.items():
        setattr(rec, key, value)
    return rec


def _run(**kw: object) -> LoadRun:
    """Four requests: A (3 tokens), B (2), C (HTTP 500), D (1 token, 20 ms late)."""
    records = [
        _rec(0, 0.00, 0.00, [0.10, 0.15, 0.25], 0.26, prompt_tokens=10),
        _rec(1, 0.05, 0.05, [0.20, 0.30], 0.31, prompt_tokens=20),
        _rec(2, 0.10, 0.10, [], 0.12, error="HTTP 500: boom", status=500),
        _rec(3, 0.10, 0.12, [0.32], 0.33, prompt_tokens=5),
    ]
    fields: dict[str, object] = dict(
        records=records, target_rate=40.0, arrival="poisson", burstiness=1.0, concurrency=None,
        start_s=0.0, end_s=0.33, cpu_s=0.004, loop_cpu_s=0.003,
    )  # fmt: skip
    fields.update(kw)
    return LoadRun(**fields)  # type: ignore[arg-type]


def test_record_definitions_are_vllms() -> None:
    a = _run().records[0]
    assert a.ttft_s == pytest.approx(0.10)
    assert a.latency_s == pytest.approx(0.25)
    assert a.tpot_s == pytest.approx(0.075)  # (0.25 - 0.10) / (3 - 1)
    assert a.itls_s == pytest.approx([0.05, 0.10])
    d = _run().records[3]
    assert d.tpot_s is None and d.ok
    assert not _run().records[2].ok


def test_latency_distributions_over_completed_requests() -> None:
    f = metrics(_run(), None)
    # TTFT 100, 150, 200 ms; numpy's linear percentile: p90 at rank 1.8.
    assert (f["ttft_ms_mean"], f["ttft_ms_p50"]) == pytest.approx((150.0, 150.0))
    assert (f["ttft_ms_p90"], f["ttft_ms_p99"]) == pytest.approx((190.0, 199.0))
    assert (f["tpot_ms_mean"], f["tpot_ms_p50"], f["tpot_ms_p90"]) == pytest.approx(
        (87.5, 87.5, 97.5)
    )
    assert (f["itl_ms_mean"], f["itl_ms_p50"]) == pytest.approx((250.0 / 3, 100.0))
    assert (f["e2el_ms_mean"], f["e2el_ms_p50"]) == pytest.approx((700.0 / 3, 250.0))
    assert (f["completed_requests"], f["errored_requests"], f["unsent_requests"]) == (3, 1, 0)


def test_whole_run_throughputs_and_goodput() -> None:
    f = metrics(_run(), None, Slo(ttft_ms=160, tpot_ms=80))
    assert f["request_throughput_run"] == pytest.approx(3 / 0.33)
    assert f["output_tokens_per_s_run"] == pytest.approx(6 / 0.33)
    assert f["input_tokens_per_s_run"] == pytest.approx(35 / 0.33)
    # A meets both; B misses TPOT (100 > 80); D misses TTFT (200 > 160).
    assert f["goodput_run"] == pytest.approx(1 / 0.33)
    assert metrics(_run(), None)["goodput_run"] is None


def test_a_one_token_request_has_a_tpot_of_zero_for_goodput() -> None:
    d = _run().records[3]
    assert Slo(tpot_ms=0.0).met(d) and not Slo(ttft_ms=199).met(d)
    assert Slo(e2el_ms=200).met(d)


def test_window_edges_follow_the_ml_energy_rule() -> None:
    run = _run()
    # k = 2 first tokens: 0.10, 0.20 -> opens at 0.20; m = 2 over: 0.12 (C, failed), 0.26.
    window = find_window(run.records, 2, 2)
    assert isinstance(window, Window)
    assert (window.start_s, window.end_s, window.requests) == (0.20, 0.26, (0, 1))
    assert window.duration_s == pytest.approx(0.06)


def test_window_figures_and_energy() -> None:
    run = _run()
    window = find_window(run.records, 2, 2)
    f = metrics(run, window, Slo(ttft_ms=160, tpot_ms=80), energy_j=6.0)
    assert f["steady_state_s"] == pytest.approx(0.06)
    # Inside [0.20, 0.26]: A's chunk at 0.25 and B's at 0.20; B's prefill ended at 0.20.
    assert (f["window_output_tokens"], f["window_input_tokens"]) == (2.0, 20.0)
    assert f["window_requests"] == 1.0  # A was over at 0.26
    assert f["output_tokens_per_s"] == pytest.approx(2 / 0.06)
    assert f["input_tokens_per_s"] == pytest.approx(20 / 0.06)
    assert f["request_throughput"] == pytest.approx(1 / 0.06)
    assert f["goodput"] == pytest.approx(1 / 0.06)
    assert f["energy_per_output_token_j"] == pytest.approx(3.0)
    assert f["energy_per_token_j"] == pytest.approx(6.0 / 22)
    assert f["energy_per_request_j"] == pytest.approx(3.0 * 6 / 3)  # per token x mean output
    assert (f["in_flight_mean"], f["in_flight_max"]) == pytest.approx((3.0, 3.0))
    assert metrics(run, window)["energy_per_output_token_j"] is None


def test_tokens_in_the_window_follow_the_servers_count() -> None:
    """A chunk may carry several tokens: the usage count scales the chunks inside."""
    rec = _rec(0, 0, 0, [0.1, 0.2, 0.3, 0.4], 0.5, prompt_tokens=1)
    rec.output_tokens = 8
    run = _run(records=[rec], end_s=0.5)
    f = metrics(run, Window(0.15, 0.35, 1, 1, (0,)))
    assert f["window_output_tokens"] == 4.0


def test_client_figures() -> None:
    f = metrics(_run(), None)
    assert f["target_rate"] == 40.0
    assert f["achieved_rate"] == pytest.approx(4 / 0.12)
    assert (f["send_lag_ms_p50"], f["send_lag_ms_p99"], f["send_lag_ms_max"]) == pytest.approx(
        (0.0, 19.4, 20.0)
    )
    assert f["client_cpu_ms_per_request"] == pytest.approx(1.0)
    assert metrics(_run(target_rate=float("inf")), None)["target_rate"] is None


def test_no_window_says_why() -> None:
    run = _run()
    too_few = find_window(run.records, 4, 2)
    assert isinstance(too_few, NoWindow)
    assert too_few.reason == "only 3 requests had a first token, fewer than 4"
    backwards = find_window(run.records, 3, 1)  # opens at 0.32, closes at 0.12
    assert isinstance(backwards, NoWindow) and "came before its start" in backwards.reason
    f = metrics(run, backwards)
    assert f["steady_state_s"] is None and f["output_tokens_per_s"] is None


def test_cancelled_requests_do_not_close_the_window() -> None:
    run = _run()
    run.records[2].cancelled = True
    window = find_window(run.records, 2, 2)
    assert isinstance(window, Window) and window.end_s == 0.31


def test_window_counts() -> None:
    assert window_counts(100, 8) == (8, 91)
    with pytest.raises(ServingError) as info:
        window_counts(9, 8)
    assert "num_requests=9 and a batch of 8" in str(info.value)
    assert "num_requests - 8 - 1 = 0 requests" in str(info.value)
    assert info.value.fix is not None and "at least 10 requests" in info.value.fix


def test_in_flight_is_time_weighted() -> None:
    recs = [_rec(0, 0, 0.0, [0.5], 1.0), _rec(1, 0, 0.5, [0.9], 1.0)]
    assert in_flight(recs, 0.0, 1.0) == pytest.approx({"in_flight_mean": 1.5, "in_flight_max": 2.0})


def test_validity_findings() -> None:
    run = _run()
    window = find_window(run.records, 2, 2)
    f = metrics(run, window)
    found = dict(validity(run, window, f, min_window_s=0.1, cap=4))
    assert set(found) == {"short_window", "rate_below_target", "errored_requests", "low_occupancy"}
    assert "lasted 0.060 s, under the 0.1 s" in found["short_window"]
    assert "achieved 33.3 requests/s, 16.7% below the target 40" in found["rate_below_target"]
    assert found["errored_requests"].startswith(
        "1 of 4 requests sent errored; the first (request 2): HTTP 500"
    )
    assert "mean 3 requests in flight seen by the client" in found["low_occupancy"]
    assert "low_occupancy" not in dict(validity(run, window, f, cap=3))  # 3 >= 80% of 3


def test_validity_reads_the_servers_gauges() -> None:
    gauges = PollResult(
        "u", [Scrape(0.22, 2.0, 0.0, 0.5), Scrape(0.24, 4.0, 1.0, 1.0), Scrape(0.5, 0.0, 0.0, 0.0)]
    )
    run = _run(gauges=gauges, target_rate=float("inf"))
    run.records[2].error = None
    run.records[2].chunk_s, run.records[2].first_token_s, run.records[2].end_s = [0.11], 0.11, 0.11
    run.records[2].chunk_tokens = [1]
    window = find_window(run.records, 2, 2)
    f = metrics(run, window)
    assert (f["running_mean"], f["running_max"], f["kv_cache_max"], f["gauge_scrapes"]) == (
        3.0,
        4.0,
        1.0,
        2.0,
    )
    found = dict(validity(run, window, f, cap=4))
    assert set(found) == {"low_occupancy", "kv_cache_saturated"}
    assert "mean 3 requests running on the server" in found["low_occupancy"]
    assert "KV-cache usage reached 100%" in found["kv_cache_saturated"]
    no = find_window(run.records, 9, 2)
    assert dict(validity(run, no, metrics(run, no)))["no_window"].startswith("only 4 requests")
