"""github-action-benchmark's custom JSON and the Bencher Metric Format, from results: the
direction taken from the metric catalogue, the interval as the action's range and BMF's
bounds, unmeasured metrics left out, one cycle without an interval."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_llem.report import bmf, exports, github_benchmark
from pytest_llem.results.records import EnergyInfo, ExperimentResult, Metrics
from pytest_llem.settings.converters import EXPORT_KINDS
from pytest_llem.study.metrics import METRICS, MetricInfo

# The action's own range parser (src/extractRangeInfo.ts), as a Python pattern.
ACTION_RANGE = re.compile(r"(?P<prefix>(\+-|±)\s*)(?P<value>\d.*)")


def result(
    cycle: int, tok_s: float, energy_j: float | None, point: str = "bs1", hardware: str = "cpu:x"
) -> ExperimentResult:
    metrics = Metrics(
        output_tokens=100,
        input_tokens=50,
        requests=4,
        duration_s=2.0,
        output_tokens_per_s=tok_s,
        input_tokens_per_s=tok_s / 2,
        latency_p50_s=0.5,
        energy_j=energy_j,
        energy_per_output_token_j=None if energy_j is None else energy_j / 100,
    )
    energy = (
        EnergyInfo(reason="no energy meter on this machine")
        if energy_j is None
        else EnergyInfo(source="nvml", method="counter")
    )
    return ExperimentResult(
        nodeid=f"study_s.yaml::{point}-c{cycle}",
        outcome="passed",
        study="s",
        study_hash="h",
        point_id=point,
        config_hash="c",
        cycle=cycle,
        config={},
        metrics=metrics,
        energy=energy,
        hardware=hardware,
    )


def by_name(entries: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(e["name"]): e for e in entries}


def test_each_metric_goes_to_the_file_of_its_catalogue_direction() -> None:
    found = github_benchmark.entries([result(c, 10.0 + c, 50.0 + c) for c in (1, 2, 3)])
    for direction, entries in found.items():
        assert entries, direction
        for entry in entries:
            metric = str(entry["name"]).split(" ", 1)[1]
            assert METRICS[metric].better == direction
            assert entry["unit"] == METRICS[metric].unit
    smaller, bigger = by_name(found["lower"]), by_name(found["higher"])
    assert "s/bs1 energy_per_output_token_j" in smaller and "s/bs1 latency_p50_s" in smaller
    assert "s/bs1 output_tokens_per_s" in bigger and "s/bs1 input_tokens_per_s" in bigger
    # Only the catalogue's metrics: token counts are no trend of their own.
    assert not any("output_tokens " in n or n.endswith("requests") for n in {**smaller, **bigger})


def test_the_direction_is_read_from_the_catalogue_not_a_list_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(METRICS, "latency_p50_s", MetricInfo("s", "higher", "flipped"))
    found = github_benchmark.entries([result(1, 10.0, None)])
    assert "s/bs1 latency_p50_s" in by_name(found["higher"])
    assert "s/bs1 latency_p50_s" not in by_name(found["lower"])
    monkeypatch.delitem(METRICS, "input_tokens_per_s")
    found = github_benchmark.entries([result(1, 10.0, None)])
    assert "s/bs1 input_tokens_per_s" not in by_name(found["higher"])


def test_value_is_the_mean_and_range_the_95_interval_half_width() -> None:
    results = [result(c, tok, 50.0) for c, tok in ((1, 10.0), (2, 12.0), (3, 14.0))]
    entry = by_name(github_benchmark.entries(results)["higher"])["s/bs1 output_tokens_per_s"]
    assert list(entry) == ["name", "value", "unit", "range", "extra"]
    assert entry["value"] == pytest.approx(12.0) and entry["unit"] == "tok/s"
    stats = bmf.per_config(results)[0].stats["output_tokens_per_s"]
    half = (stats["ci95_high"] - stats["ci95_low"]) / 2
    assert half > 0
    match = ACTION_RANGE.fullmatch(str(entry["range"]))
    assert match is not None and float(match["value"]) == pytest.approx(half, rel=1e-3)
    extra = str(entry["extra"]).splitlines()
    assert extra[0] == "cycles: 3" and extra[1].startswith("cv: ")
    assert extra[2].startswith("95% interval: [")
    assert "energy: nvml (counter)" in extra and "hardware: cpu:x" in extra
    # BMF carries the same interval as its bounds.
    measure = bmf.document(results)["s/bs1"]["output_tokens_per_s"]
    assert measure == {
        "value": pytest.approx(12.0),
        "lower_value": stats["ci95_low"],
        "upper_value": stats["ci95_high"],
    }
    assert measure["lower_value"] < measure["value"] < measure["upper_value"]


def test_unmeasured_energy_is_left_out_and_the_reason_is_given() -> None:
    found = github_benchmark.entries([result(c, 10.0 + c, None) for c in (1, 2)])
    names = set(by_name(found["lower"])) | set(by_name(found["higher"]))
    assert not any("energy" in n or "avg_power_w" in n for n in names)
    assert all(e["value"] != 0 for e in found["lower"] + found["higher"])
    extra = str(by_name(found["higher"])["s/bs1 output_tokens_per_s"]["extra"])
    assert "energy: not measured (no energy meter on this machine)" in extra
    assert re.search(r"not measured: energy_j, .*energy_per_output_token_j", extra)
    assert "energy_j" not in bmf.document([result(1, 10.0, None)])["s/bs1"]


def test_one_cycle_has_no_range_and_no_bmf_bounds() -> None:
    found = github_benchmark.entries([result(1, 10.0, 50.0)])
    entry = by_name(found["higher"])["s/bs1 output_tokens_per_s"]
    assert "range" not in entry and entry["value"] == 10.0
    assert str(entry["extra"]).splitlines()[0] == "cycles: 1"
    assert "cv:" not in str(entry["extra"])
    assert bmf.document([result(1, 10.0, 50.0)])["s/bs1"]["output_tokens_per_s"] == {"value": 10.0}


def test_a_metric_some_cycles_missed_says_how_many_measured_it() -> None:
    results = [result(1, 10.0, 50.0), result(2, 11.0, None), result(3, 12.0, 52.0)]
    smaller = by_name(github_benchmark.entries(results)["lower"])
    assert str(smaller["s/bs1 energy_j"]["extra"]).startswith("cycles: 2 of 3 measured\n")
    assert smaller["s/bs1 energy_j"]["value"] == pytest.approx(51.0)


def test_configs_stay_apart_and_keep_their_order() -> None:
    results = [result(1, 10.0, None, "bs2"), result(1, 20.0, None, "bs1")]
    names = [e["name"] for e in github_benchmark.entries(results)["higher"]]
    assert names == [
        "s/bs2 output_tokens_per_s",
        "s/bs2 input_tokens_per_s",
        "s/bs1 output_tokens_per_s",
        "s/bs1 input_tokens_per_s",
    ]


def test_write_replaces_both_files_even_an_empty_one(tmp_path: Path) -> None:
    target = tmp_path / "bench"
    target.mkdir()
    (target / "bigger-is-better.json").write_text('[{"name": "stale", "value": 1, "unit": "x"}]')
    no_throughput = result(1, 10.0, 50.0)
    no_throughput.metrics = None
    note = github_benchmark.write([no_throughput], target)
    assert json.loads((target / "bigger-is-better.json").read_text()) == []
    assert json.loads((target / "smaller-is-better.json").read_text()) == []
    assert "tool customBiggerIsBetter" in note and "(the action refuses it)" in note
    note = github_benchmark.write([result(1, 10.0, 50.0)], target)
    bigger = json.loads((target / "bigger-is-better.json").read_text())
    assert [e["name"] for e in bigger] == ["s/bs1 output_tokens_per_s", "s/bs1 input_tokens_per_s"]
    assert "refuses" not in note and str(target / "smaller-is-better.json") in note


def test_every_kind_the_option_accepts_has_a_writer(tmp_path: Path) -> None:
    assert set(exports.WRITERS) == set(EXPORT_KINDS)
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the directory should go")
    note = exports.write("github-benchmark", [result(1, 10.0, None)], blocker)
    assert note.startswith(f"--llem-export github-benchmark={blocker} NOT written: ")
    note = exports.write("bmf", [result(1, 10.0, None)], tmp_path / "bmf.json")
    assert note == f"Bencher Metric Format: {tmp_path / 'bmf.json'}"
    assert json.loads((tmp_path / "bmf.json").read_text())["s/bs1"]["output_tokens_per_s"]
