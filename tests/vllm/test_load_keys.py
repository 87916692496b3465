"""Engine knobs swept on real vLLM: three load keys in one session, one engine at a time.

An observer plugin in the session records, at the start of every engine load, the vLLM
processes alive under the pytest process and its resident memory: the previous engine's
EngineCore and workers must be gone before the next one starts, and memory must not grow
from one key to the next.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

OBSERVER = """
import json, os
import psutil
from pytest_llem.engines.vllm import engine as engine_module

_load = engine_module.VLLMEngine.load.__func__

def _vllm_children():
    out = []
    for proc in psutil.Process().children(recursive=True):
        try:
            out.append((proc.pid, proc.name()))
        except psutil.Error:
            pass
    return [c for c in out if c[1].startswith("VLLM::")]

def observed(cls, config, base_dir=None):
    record = {"before": _vllm_children(), "rss_mb": psutil.Process().memory_info().rss / 1e6}
    engine = _load(cls, config, base_dir)
    record["after"] = _vllm_children()
    record["engine_pids"] = engine.processes.pids
    with open(os.environ["LLEM_OBSERVER_LOG"], "a") as log:
        log.write(json.dumps(record) + "\\n")
    return engine

engine_module.VLLMEngine.load = classmethod(observed)
"""

KNOBS = """\
experiments:
  - {vllm: {engine: {max_num_seqs: 4, max_model_len: 256, enforce_eager: true}}}
  - vllm:
      engine: {max_num_seqs: 8, max_model_len: 128, enforce_eager: true,
               enable_prefix_caching: true, block_size: 64}
  - vllm:
      engine: {max_num_seqs: 2, max_model_len: 192, enforce_eager: false,
               enable_chunked_prefill: true, max_num_batched_tokens: 256}
"""


def test_three_load_keys_one_engine_at_a_time(
    run_study: Callable[..., Any],
    vllm_study: Callable[..., str],
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = pytester.path / "observer.jsonl"
    monkeypatch.setenv("LLEM_OBSERVER_LOG", str(log))
    pytester.makeconftest(OBSERVER)
    session = run_study(vllm_study(KNOBS))
    session.result.assert_outcomes(passed=3)
    loads = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(loads) == 3
    for i, load in enumerate(loads):
        assert load["before"] == [], f"load {i}: vLLM processes still alive: {load['before']}"
        names = sorted(name for _, name in load["after"])
        assert names == ["VLLM::EngineCore", "VLLM::Worker"], names
        assert sorted(load["engine_pids"]) == sorted(pid for pid, _ in load["after"])
    # The first load imports vLLM and torch; after that, a key change must not grow memory.
    assert loads[2]["rss_mb"] - loads[1]["rss_mb"] < 100, [x["rss_mb"] for x in loads]
    items = session.report["items"]
    assert [i["model_cached"] for i in items] == [False, False, False]
    engines = [i["config"]["vllm"]["engine"] for i in items]
    assert [e["enforce_eager"] for e in engines] == [True, True, False]
    assert all(i["metrics"]["output_tokens"] > 0 for i in items)
    out = session.result.stdout.str() + session.result.stderr.str()
    assert "exited unexpectedly" not in out and "Traceback" not in out
    assert [x for x in out.splitlines() if "WARNING" in x and "shutdown" in x] == []
