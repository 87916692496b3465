"""Real vLLM (CPU) hung inside the measured window: the item times out with one line, the
abandoned engine is evicted and shut down (its unfinished requests die with it, so none can
leak into the next item's figures), and the next item loads a fresh engine and passes with
figures like those of the item before the hang. At the end no engine process is left."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.hangs import SECOND_WINDOW_HANGS

pytestmark = pytest.mark.vllm_real

# The second window hangs after its first generate call (vLLM's engine core is busy in its
# own processes meanwhile); the census lists this session's child processes at the end.
CONFTEST = (
    SECOND_WINDOW_HANGS
    + """
import json
import os


def pytest_unconfigure(config):
    import psutil

    children = [
        " ".join(p.cmdline()) for p in psutil.Process(os.getpid()).children(recursive=True)
    ]
    with open("census.json", "w") as handle:
        json.dump({"children": children}, handle)
"""
)


def test_a_vllm_engine_hung_in_the_window_is_cut_and_the_next_item_passes(
    pytester: pytest.Pytester,
    run_study: Callable[..., Any],
    vllm_study: Callable[..., str],
) -> None:
    pytester.makeconftest(CONFTEST)
    text = vllm_study(
        "vllm: {engine: {max_num_seqs: 8, max_model_len: 256, enforce_eager: true}}\n"
        "window: {min_duration_s: 1}\nexecution: {timeout_s: 60}\n"
        "sweep:\n  decoder.temperature: [0.0, 0.5, 0.7]\n"
    ).replace("window: {min_duration_s: 0}\n", "")
    session = run_study(text, "-p", "no:randomly")
    items = session.items()
    out = session.result.stdout.str()
    assert [i["outcome"] for i in session.report["items"]] == ["passed", "failed", "passed"], out
    hung = items["vllm-t0.5"]
    assert hung["message"].startswith("timed out after 60 s in the measured window"), hung
    before, after = items["vllm-t0"], items["vllm-t0.7"]
    assert not after["model_cached"]  # the abandoned engine was evicted: a fresh one
    ratio = after["metrics"]["output_tokens_per_s"] / before["metrics"]["output_tokens_per_s"]
    assert 1 / 3 < ratio < 3, ratio
    # Nothing of the abandoned batch leaked in: every request counted is one of its own passes.
    assert after["metrics"]["requests"] == after["metrics"]["passes"] * 8
    census = json.loads((pytester.path / "census.json").read_text())
    # No engine process is left (multiprocessing's resource tracker lives as long as pytest).
    assert [c for c in census["children"] if "resource_tracker" not in c] == [], census
