"""Baseline files: round trip, hardware keys, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llem.gate.baseline_file import BaselineError, build, load, resolve, save
from pytest_llem.gate.hardware import differences
from pytest_llem.results.records import ExperimentResult, Metrics


def result(cycle: int, tps: float, hardware: str = "cpu:x") -> ExperimentResult:
    m = Metrics(
        output_tokens=10,
        input_tokens=5,
        requests=1,
        duration_s=1.0,
        output_tokens_per_s=tps,
        input_tokens_per_s=5.0,
    )
    return ExperimentResult(
        nodeid=f"s::p-c{cycle}",
        outcome="passed",
        study="s",
        study_hash="h",
        point_id="p",
        config_hash="c1",
        cycle=cycle,
        config={},
        metrics=m,
        hardware=hardware,
    )


def test_round_trip_keeps_per_cycle_samples(tmp_path: Path) -> None:
    path = resolve("main", tmp_path)
    assert path == tmp_path / "main.json"
    save(path, build("main", [result(2, 11.0), result(1, 10.0)]))
    loaded = load(path)
    found = loaded.lookup("c1", "cpu:x")
    entry = found.entry
    assert entry is not None and found.note == "" and found.match == "found"
    assert entry.samples["output_tokens_per_s"] == [10.0, 11.0]
    assert "energy_j" not in entry.samples  # never measured: absent, not zero


def test_other_hardware_is_never_compared(tmp_path: Path) -> None:
    baseline = build("main", [result(1, 10.0, hardware="gpu:NVIDIA A100/400W|driver550")])
    found = baseline.lookup("c1", "gpu:NVIDIA H100/700W|driver560")
    assert found.entry is None and found.match == "other_hardware"
    assert found.note == (
        "baseline 'main' holds this config only for other hardware: "
        "gpu:NVIDIA A100/400W|driver550 (this run: gpu:NVIDIA H100/700W|driver560); "
        "differs: model and count 1 x NVIDIA A100 vs 1 x NVIDIA H100; power limit 400W vs "
        "700W; driver 550 vs 560"
    )
    absent = baseline.lookup("c9", "x")
    assert absent.match == "absent" and absent.note.endswith("no entry for config c9")


def test_a_changed_study_is_named_as_such() -> None:
    baseline = build("main", [result(1, 10.0)])
    found = baseline.lookup("c2", "cpu:x", point_id=baseline.entries[0].point_id)
    assert found.match == "other_config"
    assert "with config hash c1 (this run: c2): the study changed" in found.note
    # Another study's point of the same name is not this one changed.
    other = baseline.lookup("c2", "cpu:x", baseline.entries[0].point_id, "another-study")
    assert other.match == "absent"
    same = baseline.lookup("c2", "cpu:x", baseline.entries[0].point_id, baseline.entries[0].study)
    assert same.match == "other_config"


def test_cpu_fingerprints_say_what_differs() -> None:
    assert differences("cpu:AMD EPYC 7B13|2 cores", "cpu:Intel Xeon|4 cores") == [
        "model and count AMD EPYC 7B13 vs Intel Xeon",
        "cores 2 vs 4",
    ]
    assert differences("cpu:x|2 cores", "gpu:A/1W|driver1")[0] == "device cpu vs gpu"


def test_corrupt_or_foreign_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{truncated")
    with pytest.raises(BaselineError, match=r"bad.json is not a pytest-llem baseline"):
        load(bad)
    foreign = tmp_path / "other.json"
    foreign.write_text('{"format": "something-else", "version": 1, "name": "x", "created_at": ""}')
    with pytest.raises(BaselineError, match=r"other\.json"):
        load(foreign)
    with pytest.raises(BaselineError, match="cannot read baseline"):
        load(tmp_path / "missing.json")
    assert resolve("ci/base.json", tmp_path) == Path("ci/base.json")


def test_version_2_records_each_configs_cv_and_version_1_stays_readable(tmp_path: Path) -> None:
    built = build("main", [result(1, 10.0), result(2, 12.0), result(3, 8.0)])
    assert built.version == 3  # 3 adds the answers (tests/unit/gate/test_quality_gate.py)
    assert round(built.entries[0].cv["output_tokens_per_s"], 3) == 0.2
    old = tmp_path / "old.json"
    old.write_text(
        '{"format": "pytest-llem-baseline", "version": 1, "name": "old", "created_at": "",'
        ' "entries": [{"config_hash": "c1", "hardware": "cpu:x", "point_id": "p",'
        ' "study": "s", "samples": {"output_tokens_per_s": [1.0, 2.0]}}]}'
    )
    entry = load(old).lookup("c1", "cpu:x").entry
    assert entry is not None and entry.cv == {} and load(old).version == 1
    assert entry.quality is None
