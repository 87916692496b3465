"""Real sessions on a tiny model: results, JSONL, JSON report, JUnit properties, xdist."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

StudyText = Callable[..., str]


def junit_properties(path: Path) -> dict[str, dict[str, str]]:
    """testcase name -> {property name: value} from a JUnit XML file."""
    out: dict[str, dict[str, str]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        props = {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        out[case.get("name", "")] = props
    return out


@pytest.fixture
def study(pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText) -> Path:
    text = fast_study(
        tiny_gpt2,
        "sweep:\n  pytorch.batch_size: [1, 2]\n  decoder.temperature: [0.0, 0.8]\n"
        "execution: {n_cycles: 2}\n",
    )
    return pytester.makefile(".yaml", study_tiny=text)


def test_items_pass_and_report_everywhere(pytester: pytest.Pytester, study: Path) -> None:
    result = pytester.runpytest("-v", "--junitxml=junit.xml", "--llem-results=out")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(
        [
            "*llem results*",
            "Study tiny ?*?",
            "item*outcome*out tok/s*J/token*",
            "pytorch-bs1-t0-c1*passed*n/a*",
        ]
    )
    # JSONL: one line per item, written as each finished
    lines = (pytester.path / "out" / "results.jsonl").read_text().splitlines()
    assert len(lines) == 8
    # JSON report contract
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert report["session"]["status"] == "complete"
    assert report["study"][0]["name"] == "tiny"
    item = report["items"][0]
    for key in ("nodeid", "outcome", "config_hash", "cycle", "config", "metrics", "energy"):
        assert key in item
    metrics = item["metrics"]
    for key in (
        "output_tokens",
        "input_tokens",
        "duration_s",
        "output_tokens_per_s",
        "input_tokens_per_s",
        "latency_p50_s",
        "energy_j",
        "energy_per_output_token_j",
    ):
        assert key in metrics
    if item["energy"]["source"] is None:  # this CI machine has no RAPL: null with the reason
        assert metrics["energy_j"] is None and metrics["energy_per_output_token_j"] is None
        assert item["energy"]["reason"].startswith("no RAPL")
    else:
        assert item["energy"]["source"] == "rapl" and metrics["energy_j"] >= 0
    assert metrics["input_tokens"] == 4 * 8 and metrics["output_tokens"] >= 4
    assert item["config"]["pytorch"]["batch_size"] == 1
    # JUnit properties, primitives, parsed back from the XML
    props = junit_properties(pytester.path / "junit.xml")["pytorch-bs2-t0.8-c2"]
    if props["llem.energy_source"] == "none":
        assert props["llem.energy_reason"].startswith("no RAPL")
        assert float(props["llem.output_tokens_per_s"]) > 0
    assert int(props["llem.input_tokens"]) == 32


def test_model_is_loaded_once_when_only_generation_settings_vary(
    pytester: pytest.Pytester, study: Path
) -> None:
    pytester.runpytest("--llem-results=out").assert_outcomes(passed=8)
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    cached = [item["model_cached"] for item in report["items"]]
    assert cached.count(False) == 1 and cached[0] is False


def test_xdist_keeps_properties_and_writes_one_report(
    pytester: pytest.Pytester, study: Path
) -> None:
    # Each process records the session id it runs under (workers label containers with it).
    pytester.makeconftest(
        """
        import os, pytest
        from pytest_llem.plugin import SETTINGS_KEY

        @pytest.hookimpl(trylast=True)
        def pytest_configure(config):
            who = getattr(config, "workerinput", {}).get("workerid", "controller")
            with open(f"session-{who}.txt", "w") as f:
                f.write(config.stash[SETTINGS_KEY].session_id)
        """
    )
    result = pytester.runpytest_subprocess("-n", "2", "--junitxml=junit.xml", "--llem-results=out")
    result.assert_outcomes(passed=8)
    ids = {p.name: p.read_text() for p in pytester.path.glob("session-*.txt")}
    assert sorted(ids) == ["session-controller.txt", "session-gw0.txt", "session-gw1.txt"]
    props = junit_properties(pytester.path / "junit.xml")
    assert len(props) == 8
    assert all(float(p["llem.output_tokens_per_s"]) > 0 for p in props.values())
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    assert len(report["items"]) == 8
    assert len((pytester.path / "out" / "results.jsonl").read_text().splitlines()) == 8
    assert set(ids.values()) == {report["session"]["id"]}
    assert {item["session_id"] for item in report["items"]} == {report["session"]["id"]}


def test_a_failing_item_does_not_stop_the_session(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    # A missing file is a collection error now; a broken one is found only when read.
    (pytester.path / "broken.jsonl").write_text("not json\n")
    pytester.makefile(
        ".yaml",
        study_mixed=fast_study(
            tiny_gpt2, "experiments:\n  - {n: 2}\n  - {dataset: broken.jsonl}\n  - {n: 3}\n"
        ),
    )
    result = pytester.runpytest("--llem-results=out")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*DatasetError: */broken.jsonl:1: not valid JSON*"])
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    outcomes = [(i["point_id"], i["outcome"]) for i in report["items"]]
    assert outcomes == [
        ("pytorch-n2-synthetic", "passed"),
        ("pytorch-n4-broken.jsonl", "failed"),
        ("pytorch-n3-synthetic", "passed"),
    ]
    assert "not valid JSON" in report["items"][1]["message"]


def test_jsonl_dataset_relative_to_the_study(
    pytester: pytest.Pytester, tiny_llama: Path, fast_study: StudyText
) -> None:
    (pytester.path / "data").mkdir()
    (pytester.path / "data" / "p.jsonl").write_text(
        '{"question": "the quick brown fox"}\n{"question": "a tiny model"}\n'
    )
    pytester.makefile(
        ".yaml",
        study_q=fast_study(tiny_llama, "").replace(
            "dataset: {source: synthetic, input_len: 8}", "dataset: data/p.jsonl"
        ),
    )
    pytester.runpytest("--llem-results=out").assert_outcomes(passed=1)
    item = json.loads((pytester.path / "out" / "report.json").read_text())["items"][0]
    assert item["metrics"]["requests"] == 4
