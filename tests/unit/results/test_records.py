"""Crash-safe writing of results, and old results staying readable."""

from __future__ import annotations

import json
from pathlib import Path

from pytest_llem.results.records import (
    Measurement,
    ThermalRecord,
    append_jsonl,
    write_json_atomic,
)


def test_append_jsonl_writes_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "r.jsonl"
    append_jsonl(path, {"a": 1})
    append_jsonl(path, {"b": [1, 2]})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1}, {"b": [1, 2]}]


def test_write_json_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    write_json_atomic(path, {"v": 1})
    write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_warmup_and_thermal_records_written_before_method_and_batches_still_read() -> None:
    old = Measurement.model_validate_json(
        '{"schema_version": 1, "metrics": {"output_tokens": 1, "input_tokens": 1, "requests": 1,'
        ' "duration_s": 1.0, "output_tokens_per_s": 1.0, "input_tokens_per_s": 1.0},'
        ' "energy": {}, "warmup": {"iterations": 3, "duration_s": 1.5},'
        ' "thermal": {"waited_s": 5.0, "stabilised": true, "reason": "stable"}}'
    )
    assert old.warmup is not None and old.warmup.method is None
    assert old.thermal is not None and old.thermal.method is None and old.thermal.batches is None
    new = old.model_copy(
        update={
            "thermal": ThermalRecord(
                waited_s=2.0, stabilised=True, reason="steady", method="power_steady", batches=4
            )
        }
    )
    again = Measurement.model_validate_json(new.model_dump_json())
    assert again.thermal is not None and again.thermal.method == "power_steady"
    assert again.thermal.batches == 4
