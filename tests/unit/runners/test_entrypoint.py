"""The warm worker (``entrypoint --serve``): requests in, results and responses out, the engine
kept while the load key stays the same. A scripted CPU engine stands in for a real one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_llem.devices import GpuRef
from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.cache import ModelCache
from pytest_llem.engines.engine import BatchResult, Completion, MemoryInfo, Request
from pytest_llem.runners import entrypoint
from pytest_llem.runners.docker.worker import (
    REQUEST_NAME,
    WorkerRequest,
    WorkerResponse,
    write_atomic,
)
from pytest_llem.runners.run_spec import RunSpec


class ScriptedEngine:
    closed = 0

    def requests(self, config: BuiltinConfig) -> list[Request]:
        return [Request((1, 2)) for _ in range(config.n)]

    def batches(self, requests: list[Request], config: BuiltinConfig) -> list[list[Request]]:
        return [requests]

    def generate(self, batch: list[Request], config: BuiltinConfig) -> BatchResult:
        if config.max_output_tokens == 13:
            raise RuntimeError("engine core died")
        return BatchResult([Completion(2, 4, 0.01) for _ in batch], 0.01)

    def memory(self) -> MemoryInfo:
        return MemoryInfo(peak_mb=1.0, model_mb=1.0)

    def devices(self) -> list[GpuRef]:
        return []

    def close(self) -> None:
        ScriptedEngine.closed += 1


def cache() -> ModelCache:
    return ModelCache(
        loader=lambda c, b: ScriptedEngine(),  # type: ignore[arg-type,return-value]
        key=lambda c: c.precision,
    )


def request(tmp_path: Path, seq: int, **config: object) -> str:
    """An item's exchange files and the request for it (host paths: no container here)."""
    item = tmp_path / f"item{seq}"
    item.mkdir()
    cfg = BuiltinConfig.model_validate(
        {
            "model": "m",
            "device": "cpu",
            "n": 2,
            "warmup": {"n_warmup": 1},
            "window": {"min_duration_s": 0},
            "baseline": {"enabled": False},
            **config,
        }
    )
    spec = RunSpec(nodeid=f"s::{seq}", point_id=str(seq), config_hash=f"h{seq}", config=cfg)
    (item / f"h{seq}_config.json").write_text(spec.model_dump_json())
    return WorkerRequest(
        seq=seq,
        config_path=str(item / f"h{seq}_config.json"),
        log_file=str(item / f"h{seq}_log.txt"),
        response_file=str(item / f"h{seq}_response.json"),
    ).model_dump_json()


def response(tmp_path: Path, seq: int) -> WorkerResponse:
    path = tmp_path / f"item{seq}" / f"h{seq}_response.json"
    return WorkerResponse.model_validate_json(path.read_text())


def test_the_engine_stays_loaded_while_the_load_key_is_the_same(tmp_path: Path) -> None:
    models = cache()
    for seq, precision in enumerate(["fp32", "fp32", "bf16", "bf16"], start=1):
        entrypoint.handle(request(tmp_path, seq, precision=precision), models)
    answers = [response(tmp_path, s) for s in (1, 2, 3, 4)]
    assert [a.exit_code for a in answers] == [0, 0, 0, 0]
    assert [a.model_cached for a in answers] == [False, True, False, True]
    assert [a.loads for a in answers] == [1, 1, 2, 2]
    assert answers[3].load_s >= answers[0].load_s >= 0
    result = json.loads((tmp_path / "item2" / "h2_result.json").read_text())
    assert result["model_cached"] is True
    log = (tmp_path / "item1" / "h1_log.txt").read_text()
    assert "[llem] load m" in log and "[llem] measure" in log  # progress for the host


def test_a_failed_item_writes_its_error_and_drops_the_engine(tmp_path: Path) -> None:
    models = cache()
    entrypoint.handle(request(tmp_path, 1), models)
    closed = ScriptedEngine.closed
    entrypoint.handle(request(tmp_path, 2, max_output_tokens=13), models)
    failed = response(tmp_path, 2)
    assert failed.exit_code == 1 and failed.model_cached is None
    error = json.loads((tmp_path / "item2" / "h2_error.json").read_text())
    assert "engine core died" in error["message"] and "Traceback" in error["traceback"]
    assert ScriptedEngine.closed == closed + 1  # not kept for the next item
    entrypoint.handle(request(tmp_path, 3), models)
    assert response(tmp_path, 3).model_cached is False and response(tmp_path, 3).loads == 2


def test_serve_claims_the_request_and_answers(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_atomic(inbox / REQUEST_NAME, request(tmp_path, 1))
    assert entrypoint.serve(inbox, cache(), max_requests=1) == 0
    assert not (inbox / REQUEST_NAME).exists()  # claimed: a restarted worker never reruns it
    assert response(tmp_path, 1).exit_code == 0
    assert list(inbox.iterdir()) == []  # no temp file left by the atomic write


@pytest.mark.parametrize(
    "text", ["{not json", json.dumps({"schema_version": 1, "seq": 1, "unknown": True})]
)
def test_a_request_from_another_version_stops_the_worker(tmp_path: Path, text: str) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / REQUEST_NAME).write_text(text)
    assert entrypoint.serve(inbox, cache(), max_requests=1) == 2
