"""No silent pass: a gated config is decided on all its cycles or fails loudly, whichever way a
cycle goes missing (deselected, failed, skipped, timed out, crashed, --lf), and a rerun never
re-draws a verdict. One config x 3 cycles on the tiny model, against a baseline 10x faster
(today looks like a 90% throughput regression)."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

StudyText = Callable[..., str]
LIMIT = "gate: {max_regression: {output_tokens_per_s: 5%}}\n"

# Faults for one cycle, from a conftest: the plugin's fixtures are overridable (that is why
# items are pytest.Function), so a conftest can make one cycle fail the way real ones do.
FAULTS = """
import os
import time

import pytest

def fault():
    # (mode, cycle) from LLEM_TEST_FAULT="<mode>:<cycle>", read when an item runs
    mode, _, cycle = os.environ.get("LLEM_TEST_FAULT", "").partition(":")
    return mode, cycle


class Faulty:
    def __init__(self, inner):
        self.inner, self.info = inner, inner.info

    def run(self, spec, progress):
        mode, _ = fault()
        if mode == "crash":
            raise RuntimeError("the engine crashed mid-cycle")
        if mode == "hang":
            time.sleep(120)
        if mode == "die":
            os._exit(1)  # the xdist worker dies under the item
        return self.inner.run(spec, progress)

    def close(self):
        self.inner.close()


def _mine(request):
    return str(request.node.cycle) == fault()[1]


@pytest.fixture
def llem_preflight(request, llem_session):
    if fault()[0] == "skip" and _mine(request):
        pytest.skip("no GPU on this runner (simulated)")
    return llem_session.checks_for(request.node.ref)


@pytest.fixture
def llem_runner(request, llem_session):
    runner = llem_session.runner_for(request.node.ref)
    return Faulty(runner) if _mine(request) else runner
"""


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "out" / "report.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture
def gated(pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText) -> pytest.Pytester:
    """A 1-config x 3-cycle study, its baseline saved and made 10x faster than today."""
    pytester.makefile(".yaml", study_g=fast_study(tiny_gpt2, "execution: {n_cycles: 3}\n" + LIMIT))
    pytester.makeconftest(FAULTS)
    pytester.runpytest(
        "--llem-results=out", "--llem-save-baseline=main", "--llem-save-baseline-force"
    ).assert_outcomes(passed=3)
    path = pytester.path / ".llem" / "baselines" / "main.json"
    data = json.loads(path.read_text())
    for entry in data["entries"]:
        mean = sum(entry["samples"]["output_tokens_per_s"]) / 3
        entry["samples"]["output_tokens_per_s"] = [mean * 10 * (1 + 0.001 * k) for k in (-1, 0, 1)]
    path.write_text(json.dumps(data))
    return pytester


def config_entry(pytester: pytest.Pytester) -> dict[str, Any]:
    (entry,) = report(pytester)["configs"]
    return entry  # type: ignore[no-any-return]


def test_a_deselected_cycle_fails_every_item_that_ran(gated: pytest.Pytester) -> None:
    result = gated.runpytest("--llem-results=out", "--llem-compare=main", "-k", "not c3")
    result.assert_outcomes(failed=2, deselected=1)  # before: 2 passed, gate "pending", exit 0
    result.stdout.fnmatch_lines(
        [
            "*regression gate inconclusive for pytorch (cycle 1): the gate decides a config "
            "on all its cycles*",
            "*c3 not selected in this session*",
        ]
    )
    items = report(gated)["items"]
    assert {i["gate"]["status"] for i in items} == {"inconclusive"}
    comp = items[0]["gate"]["comparisons"][0]
    assert comp["missing_cycles"] == {"3": comp["missing_cycles"]["3"]}
    assert "not selected" in comp["missing_cycles"]["3"]
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_warn_reports_a_deselected_cycle_without_failing(gated: pytest.Pytester) -> None:
    result = gated.runpytest(
        "--llem-results=out", "--llem-compare=main", "-k", "not c3", "--llem-inconclusive=warn"
    )
    result.assert_outcomes(passed=2, deselected=1)
    assert {i["gate"]["status"] for i in report(gated)["items"]} == {"inconclusive"}


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("crash:2", "failed: RuntimeError: the engine crashed mid-cycle"),
        ("skip:2", "skipped: no GPU on this runner (simulated)"),
    ],
)
def test_a_cycle_lost_before_the_last_makes_the_last_inconclusive(
    gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fault: str, reason: str
) -> None:
    monkeypatch.setenv("LLEM_TEST_FAULT", fault)
    result = gated.runpytest("--llem-results=out", "--llem-compare=main", "-p", "no:randomly")
    last = next(i for i in report(gated)["items"] if i["cycle"] == 3)
    assert last["outcome"] == "failed" and last["gate"]["status"] == "inconclusive"
    assert last["gate"]["comparisons"][0]["missing_cycles"] == {"2": reason}
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("skip:3", "skipped: no GPU on this runner (simulated)"),
        ("crash:3", "failed: RuntimeError: the engine crashed mid-cycle"),
    ],
)
def test_a_lost_last_cycle_fails_the_config_as_a_test_of_its_own(
    gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, fault: str, reason: str
) -> None:
    monkeypatch.setenv("LLEM_TEST_FAULT", fault)
    result = gated.runpytest(
        "--llem-results=out", "--llem-compare=main", "--junitxml=j.xml", "-p", "no:randomly"
    )
    # Before: with the last cycle skipped, 2 passed + 1 skipped and exit 0.
    result.stdout.fnmatch_lines(
        [
            "study_g.yaml ..[Fs.]F*[[]100%[]]",
            f"*inconclusive (failed): pytorch: not decided on all its cycles: c3 {reason}*",
            "FAILED study_g.yaml::pytorch[[]gate[]] - regression gate inconclusive*",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    entry = config_entry(gated)
    assert entry["gate"] == "inconclusive" and entry["missing_cycles"] == {"3": reason}
    assert report(gated)["session"]["gate_unsettled"][0]["point_id"] == "pytorch"
    cases = {c.get("name"): c for c in ET.parse(gated.path / "j.xml").getroot().iter("testcase")}
    gate_case = cases["pytorch[gate]"]
    assert gate_case.find("failure") is not None


def test_a_timed_out_cycle_is_named(
    gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLEM_TEST_FAULT", "hang:2")
    study = gated.path / "study_g.yaml"
    study.write_text(study.read_text().replace("n_cycles: 3}", "n_cycles: 3, timeout_s: 20}"))
    gated.runpytest("--llem-results=out", "--llem-compare=main", "-p", "no:randomly")
    last = next(i for i in report(gated)["items"] if i["cycle"] == 3)
    assert last["gate"]["comparisons"][0]["missing_cycles"] == {"2": "timed out"}


def test_lf_rerunning_only_the_failed_cycle_is_not_a_pass(
    gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLEM_TEST_FAULT", "crash:3")
    gated.runpytest("--llem-results=out", "--llem-compare=main", "-p", "cacheprovider")
    monkeypatch.delenv("LLEM_TEST_FAULT")
    result = gated.runpytest(
        "--llem-results=out", "--llem-compare=main", "-p", "cacheprovider", "--lf"
    )
    # Before: c3 alone ran, decided on one cycle or left pending, and passed.
    result.assert_outcomes(failed=1)
    (item,) = report(gated)["items"]
    missing = item["gate"]["comparisons"][0]["missing_cycles"]
    assert sorted(missing) == ["1", "2"] and all("not selected" in v for v in missing.values())


def test_a_crashed_xdist_worker_leaves_no_silent_pass(
    gated: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLEM_TEST_FAULT", "die:2")
    result = gated.runpytest_subprocess(
        "--llem-results=out", "--llem-compare=main", "-n", "2", "-p", "no:randomly"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*inconclusive (failed): pytorch*c2 *"])
    entry = config_entry(gated)
    assert entry["gate"] == "inconclusive" and "2" in entry["missing_cycles"]


def test_another_hardwares_baseline_names_both_sides(gated: pytest.Pytester) -> None:
    path = gated.path / ".llem" / "baselines" / "main.json"
    data = json.loads(path.read_text())
    for entry in data["entries"]:
        entry["hardware"] = "gpu:NVIDIA H100 80GB HBM3/700W|driver560"
    path.write_text(json.dumps(data))
    result = gated.runpytest("--llem-results=out", "--llem-compare=main")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*not compared: pytorch: baseline 'main' holds this config only for other "
            "hardware: gpu:NVIDIA H100 80GB HBM3/700W|driver560 (this run: cpu:*); differs: "
            "device gpu vs cpu*"
        ]
    )
    gate = report(gated)["items"][-1]["gate"]
    assert gate["status"] == "no_baseline" and gate["baseline_match"] == "other_hardware"
    strict = gated.runpytest("--llem-results=out", "--llem-compare=main", "--llem-require-baseline")
    strict.assert_outcomes(failed=3)


def test_a_changed_study_is_named_not_silently_unbaselined(gated: pytest.Pytester) -> None:
    study = gated.path / "study_g.yaml"
    study.write_text(study.read_text().replace("max_output_tokens: 4", "max_output_tokens: 5"))
    result = gated.runpytest("--llem-results=out", "--llem-compare=main")
    result.stdout.fnmatch_lines(
        [
            "*not compared: pytorch: baseline 'main' holds point pytorch with config "
            "hash * (this run: *): the study changed since the baseline was saved*"
        ]
    )


def test_a_baseline_without_energy_is_listed_and_fails_when_energy_is_required(
    gated: pytest.Pytester, fake_rapl: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This run measures energy (RAPL through a fake sysfs tree, which cannot exist here); the
    # baseline, saved where RAPL was absent, has no energy figures.
    from pytest_llem.energy import select
    from pytest_llem.runners import local

    real = select.select_meter
    monkeypatch.setattr(local, "select_meter", lambda c, o, g: real(c, o, g, rapl_root=fake_rapl))
    study = gated.path / "study_g.yaml"
    study.write_text(study.read_text() + "\nbaseline: {enabled: false}\n")
    study_gate = "--llem-fail-on=energy_per_output_token_j>5%"
    result = gated.runpytest("--llem-results=out", "--llem-compare=main", study_gate)
    result.stdout.fnmatch_lines(
        ["*energy not compared: pytorch: the baseline has no energy_per_output_token_j*"]
    )
    strict = gated.runpytest(
        "--llem-results=out", "--llem-compare=main", study_gate, "--llem-require-energy"
    )
    strict.stdout.fnmatch_lines(
        ["*the baseline has no energy figure for this config and --llem-require-energy is set*"]
    )
    assert strict.ret == pytest.ExitCode.TESTS_FAILED


def test_require_energy_fails_an_item_that_measured_none(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makefile(".yaml", study_e=fast_study(tiny_gpt2))
    result = pytester.runpytest("--llem-results=out", "--llem-energy=null", "--llem-require-energy")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*EnergyRequired: no energy measured on cpu*"])


def test_collect_only_plans_what_the_study_can_detect_and_how_long_it_takes(
    gated: pytest.Pytester,
) -> None:
    result = gated.runpytest("--collect-only", "--llem-compare=main", "--llem-results=out")
    result.stdout.fnmatch_lines(
        [
            "*gate: baseline 'main', 3 cycles a side, alpha 0.05, 80% power*",
            "*pytorch: output_tokens_per_s: detects *% (limit 5%)*",
            "*estimated * (3 item(s) from past results here*",
        ]
    )


def test_the_report_records_the_estimate_and_the_actual_time(gated: pytest.Pytester) -> None:
    gated.runpytest("--llem-results=out", "--llem-compare=main")
    data = report(gated)
    (study,) = data["study"]
    assert study["estimated_s"] > 0 and study["actual_s"] > 0
    metrics = study["planning"][0]["metrics"]["output_tokens_per_s"]
    assert 0 < metrics["min_detectable_change"] < 1
    assert data["session"]["estimated_s"] > 0 and data["session"]["actual_s"] > 0


def test_merge_decides_complete_configs_only_and_names_the_rest(gated: pytest.Pytester) -> None:
    gated.runpytest("--llem-results=out", "--llem-json=shard.json")
    shard = json.loads((gated.path / "shard.json").read_text())
    shard["items"] = [i for i in shard["items"] if i["cycle"] != 3]  # a shard cut short
    (gated.path / "shard.json").write_text(json.dumps(shard))
    result = gated.run(
        sys.executable,
        "-m",
        "pytest_llem",
        "merge",
        "shard.json",
        "-o",
        "merged.json",
        "--compare",
        ".llem/baselines/main.json",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["*incomplete (not decided on all its cycles): pytorch *: c3 not selected*"]
    )
    merged = json.loads((gated.path / "merged.json").read_text())
    assert {i["outcome"] for i in merged["items"]} == {"failed"}
    assert {i["gate"]["status"] for i in merged["items"]} == {"inconclusive"}
