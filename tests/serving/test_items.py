"""Serving items in real pytest sessions: a ``serve:`` study against a running server.

The server is the known-delay test server (a subprocess on loopback): ``serve.endpoint``
items load it as any OpenAI-compatible server, so the figures can be checked against the
delays it was started with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.serving.conftest import TestServer

Start = Callable[..., TestServer]
pytestmark = pytest.mark.timeout(300)


def study(endpoint: str, serve: str = "", extra: str = "") -> str:
    return (
        "name: serve\n"
        "model: test-model\n"
        "backend: pytorch\n"
        "device: cpu\n"
        "n: 8\n"
        "dataset: prompts-en\n"
        "max_output_tokens: 16\n"
        f"serve: {{endpoint: '{endpoint}', {serve or 'rate: 20, concurrency: 4, num_requests: 32'}}}\n"
        + extra
    )


def items(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    data = json.loads((pytester.path / "out" / "report.json").read_text())
    return list(data["items"])


def test_an_endpoint_item_reports_the_servers_known_delays(
    pytester: pytest.Pytester, serving_server: Start
) -> None:
    server = serving_server("--first-token-ms", "50", "--itl-ms", "10")
    pytester.makefile(".yaml", study_serve=study(server.base_url))
    result = pytester.runpytest_subprocess("--llem-results=out", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    (item,) = items(pytester)
    m = item["metrics"]
    assert abs(m["ttft_ms_p50"] - 50.0) / 50.0 < 0.15, m["ttft_ms_p50"]
    assert abs(m["tpot_ms_p50"] - 10.0) / 10.0 < 0.15, m["tpot_ms_p50"]
    for name in ("ttft_ms_p99", "request_throughput", "steady_state_s", "achieved_rate"):
        assert m[name] is not None and m[name] > 0, name
    assert m["completed_requests"] == 32 and m["errored_requests"] == 0
    assert m["output_tokens"] > 0 and m["requests"] > 0  # the window's, not the run's
    # No RAPL or GPU here: energy figures are null, with the reason, never estimated.
    if item["energy"]["source"] is None:
        assert m["energy_per_request_j"] is None and m["energy_j"] is None
        assert item["energy"]["reason"]
    assert item["serving"]["server"]["ours"] is False
    assert item["serving"]["figures"]["target_rate"] == 20.0
    assert item["serving"]["gauges"] == "scraped"


def test_slo_goodput_and_a_sweep_of_rates(pytester: pytest.Pytester, serving_server: Start) -> None:
    server = serving_server("--first-token-ms", "20", "--itl-ms", "5")
    # The first rate meets a 1 s end-to-end objective; a 10 ms one is met by none.
    text = study(
        server.base_url,
        "concurrency: 2, num_requests: 12, slo: {e2el_ms: 1000}",
        "sweep:\n  serve.rate: [10, inf]\n",
    )
    pytester.makefile(".yaml", study_serve=text)
    result = pytester.runpytest_subprocess("--llem-results=out", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    got = {i["point_id"]: i["metrics"] for i in items(pytester)}
    assert set(got) == {"pytorch-rate-10", "pytorch-rate-inf"}, set(got)
    for m in got.values():
        assert m["goodput"] is not None and m["goodput"] == pytest.approx(m["request_throughput"])
    assert got["pytorch-rate-inf"]["target_rate"] is None  # all at once: no target


def test_bad_serve_keys_name_the_file_the_field_and_the_fix(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        study_bad=study("http://127.0.0.1:9/v1", "rate: 4, concurency: 8, num_requests: 32"),
    )
    result = pytester.runpytest_subprocess("--collect-only")
    result.stdout.fnmatch_lines(
        [
            "*study_bad.yaml:8: serve.concurency: unknown key 'concurency'",
            "*fix: did you mean 'concurrency'?",
        ]
    )
    pytester.makefile(
        ".yaml", study_few=study("http://127.0.0.1:9/v1", "concurrency: 8, num_requests: 10")
    )
    result = pytester.runpytest_subprocess("--collect-only", "study_few.yaml")
    result.stdout.fnmatch_lines(["*num_requests 10 leaves no steady state*num_requests >= 18*"])


def test_an_endpoint_that_does_not_answer_fails_the_item_with_the_fix(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    from pytest_llem.serving.process import free_port

    port = free_port()  # nothing listens there
    pytester.makefile(".yaml", study_serve=study(f"http://127.0.0.1:{port}/v1"))
    result = pytester.runpytest_subprocess("--llem-results=out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*serve.endpoint http://127.0.0.1:{port}/v1 does not answer*"])


def test_serving_metrics_gate_as_budgets(pytester: pytest.Pytester, serving_server: Start) -> None:
    server = serving_server("--first-token-ms", "300", "--itl-ms", "5")
    pytester.makefile(
        ".yaml",
        study_serve=study(
            server.base_url,
            "concurrency: 2, num_requests: 8, rate: inf",
            "gate: {budgets: {ttft_ms_p99: 100}}\n",
        ),
    )
    result = pytester.runpytest_subprocess("--llem-results=out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ttft_ms_p99*<= 100*fail*"])


def test_an_ab_of_two_servers_is_judged_on_paired_cycles(
    pytester: pytest.Pytester, serving_server: Start
) -> None:
    fast = serving_server("--first-token-ms", "10", "--itl-ms", "2")
    slow = serving_server("--first-token-ms", "60", "--itl-ms", "2")
    text = study(
        fast.base_url,
        "concurrency: 2, num_requests: 8, rate: inf",
        "execution: {n_cycles: 6}\n"
        "gate: {max_regression: {ttft_ms_p50: 20%}}\n"
        f"ab:\n  reference: {{serve.endpoint: '{fast.base_url}'}}\n"
        f"  candidate: {{serve.endpoint: '{slow.base_url}'}}\n",
    )
    pytester.makefile(".yaml", study_ab=text)
    result = pytester.runpytest_subprocess("--llem-results=out")
    result.assert_outcomes(passed=12, failed=1)  # the arms ran; the pair regressed
    result.stdout.fnmatch_lines(["FAILED study_ab.yaml::pytorch[[]ab[]] - regression gate failed*"])
    arms = {i["arm"] for i in items(pytester)}
    assert arms == {"reference", "candidate"}


def test_a_serving_candidate_with_half_length_answers_fails_output_length(
    pytester: pytest.Pytester, serving_server: Start
) -> None:
    full = serving_server("--first-token-ms", "10", "--itl-ms", "4")
    short = serving_server("--first-token-ms", "10", "--itl-ms", "4", "--eos-after", "8")
    text = study(
        full.base_url,
        "concurrency: 2, num_requests: 8, rate: inf, fixed_output: false",
        "execution: {n_cycles: 4}\n"
        "quality: {output_length: true, token_agreement: 90%}\n"
        f"ab:\n  reference: {{serve.endpoint: '{full.base_url}'}}\n"
        f"  candidate: {{serve.endpoint: '{short.base_url}'}}\n",
    )
    pytester.makefile(".yaml", study_ab=text)
    result = pytester.runpytest_subprocess("--llem-results=out")
    result.assert_outcomes(passed=8, failed=1)
    result.stdout.fnmatch_lines(["*output_length*"])
    arms = items(pytester)
    assert all(i["quality"] is not None for i in arms)
    lengths = {i["arm"]: i["quality"]["output_tokens_per_request"] for i in arms}
    assert lengths == {"reference": 16.0, "candidate": 8.0}
    # The test server returns token ids (return_token_ids): agreement is judged too.
    assert all(i["quality"]["outputs"] for i in arms)
