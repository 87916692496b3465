"""Issue 16: pytest-llem with the plugins users already have. One plugin per test (the
others disabled in the inner session), plus the combinations the issue names."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import only

StudyText = Callable[..., str]
ALWAYS_FAILS = "output_tokens_per_s>1e9"  # a floor no CPU reaches: the gate fails every item
ALWAYS_PASSES = "output_tokens_per_s>1e-9"


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / "out" / "report.json").read_text())
    return data


@pytest.fixture
def two_cycles(pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText) -> Path:
    text = fast_study(tiny_gpt2, "execution: {n_cycles: 2}\n")
    return pytester.makefile(".yaml", study_re=text)


def _assert_reruns_recorded(pytester: pytest.Pytester, result: pytest.RunResult) -> None:
    assert result.parseoutcomes() == {"failed": 2, "rerun": 4}
    assert "INTERNALERROR" not in result.stdout.str()
    attempts = [
        (r["point_id"], r["cycle"], r["attempt"], r["outcome"])
        for r in lines(pytester.path / "out" / "results.jsonl")
    ]
    for cycle in (1, 2):  # the JSONL keeps every attempt of every cycle
        mine = sorted(a[2:] for a in attempts if a[1] == cycle)
        assert mine == [(1, "rerun"), (2, "rerun"), (3, "failed")]
    items = report(pytester)["items"]
    assert sorted((i["cycle"], i["attempt"], i["outcome"]) for i in items) == [
        (1, 3, "failed"),
        (2, 3, "failed"),
    ]  # the report keeps the last attempt
    # The gate kept one sample per cycle (the first attempt: a rerun never re-draws): 2, not 6.
    final = [i for i in items if i["cycle_stats"]]
    assert final and all(i["cycle_stats"]["output_tokens_per_s"]["n"] == 2 for i in final)


def test_rerunfailures_attempts_are_recorded_and_the_gate_keeps_the_first(
    pytester: pytest.Pytester, two_cycles: Path
) -> None:
    args = ["--reruns", "2", "--llem-fail-on", ALWAYS_FAILS, "--llem-results=out"]
    result = pytester.runpytest(*only("rerunfailures"), *args)
    _assert_reruns_recorded(pytester, result)


UNLUCKY_FIRST_ATTEMPT = """
import pytest

attempts = {}


class Unlucky:
    # The first attempt of cycle 3 measures a million times slower (a load spike); its reruns
    # measure what the machine does. A rerun must not be a fresh draw for the gate.
    def __init__(self, inner, nodeid):
        self.inner, self.nodeid, self.info = inner, nodeid, inner.info

    def run(self, spec, progress):
        m = self.inner.run(spec, progress)
        attempts[self.nodeid] = attempts.get(self.nodeid, 0) + 1
        if attempts[self.nodeid] > 1:
            return m
        slow = m.metrics.output_tokens_per_s * 1e-6
        return m.model_copy(update={"metrics": m.metrics.model_copy(update={"output_tokens_per_s": slow})})

    def close(self):
        self.inner.close()


@pytest.fixture
def llem_runner(request, llem_session):
    runner = llem_session.runner_for(request.node.ref)
    return Unlucky(runner, request.node.nodeid) if request.node.cycle == 3 else runner
"""


def test_a_rerun_never_redraws_the_verdict(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    text = fast_study(tiny_gpt2, "execution: {n_cycles: 3}\n")
    pytester.makefile(".yaml", study_draw=text)
    saved = pytester.runpytest(
        *only("rerunfailures"), "--llem-save-baseline=main", "--llem-save-baseline-force"
    )
    saved.assert_outcomes(passed=3)
    path = pytester.path / ".llem" / "baselines" / "main.json"
    data = json.loads(path.read_text())
    for entry in data["entries"]:  # the baseline 100x slower: today is a clear improvement
        values = entry["samples"]["output_tokens_per_s"]
        entry["samples"]["output_tokens_per_s"] = [v / 100 for v in values]
    path.write_text(json.dumps(data))
    pytester.makeconftest(UNLUCKY_FIRST_ATTEMPT)
    result = pytester.runpytest(
        *only("rerunfailures"),
        "--reruns",
        "2",
        "--llem-compare=main",
        "--llem-results=out",
        "--llem-fail-on=output_tokens_per_s>5%",
    )
    # Before: the rerun replaced cycle 3's sample, the verdict was drawn again and passed.
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1 and outcomes.get("rerun") == 2
    last = next(i for i in report(pytester)["items"] if i["cycle"] == 3)
    assert last["gate"]["status"] in ("fail", "inconclusive")
    assert "the gate keeps its first sample" in last["gate"]["note"]


def test_rerunfailures_under_xdist(pytester: pytest.Pytester, two_cycles: Path) -> None:
    args = ["-n", "2", "--reruns", "2", "--llem-fail-on", ALWAYS_FAILS, "--llem-results=out"]
    result = pytester.runpytest_subprocess(*only("rerunfailures"), *args)
    _assert_reruns_recorded(pytester, result)


def test_randomly_cannot_weaken_the_gate_and_the_order_is_recorded(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    text = fast_study(tiny_gpt2, "sweep:\n  pytorch.batch_size: [1, 2]\nexecution: {n_cycles: 3}\n")
    pytester.makefile(".yaml", study_rand=text)
    args = ["--randomly-seed=2", "--llem-fail-on", ALWAYS_PASSES, "--llem-results=out"]
    result = pytester.runpytest(*only("randomly"), *args)
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*item order: pytest-randomly (seed 2) reordered*"])
    doc = report(pytester)
    order = doc["session"]["order"]
    assert order["study_order"] is False
    assert order["reordered_by"] == ["pytest-randomly"] and order["seed"] == 2
    ran = [r["nodeid"] for r in lines(pytester.path / "out" / "results.jsonl")]
    assert order["ran"] == ran
    cycles = [int(re.sub(r".*-c", "", nodeid)) for nodeid in ran]
    assert cycles != sorted(cycles)  # seed 2 really moved cycles
    by_id = {i["nodeid"]: i for i in doc["items"]}
    for point in ("pytorch-bs1", "pytorch-bs2"):
        mine = [n for n in ran if f"::{point}-c" in n]
        # Statistics and the final decision come with the config's last item to run,
        # whatever its cycle, over all 3 cycles; no item stays pending.
        decided = [n for n in mine if by_id[n]["cycle_stats"]]
        assert decided == [mine[-1]]
        assert by_id[mine[-1]]["cycle_stats"]["output_tokens_per_s"]["n"] == 3
        assert all(by_id[n]["gate"]["status"] == "pass" for n in mine)


def test_repeat_count_is_refused_for_study_items(
    pytester: pytest.Pytester, two_cycles: Path
) -> None:
    result = pytester.runpytest(*only("repeat"), "--count", "2", "--llem-results=out")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*pytest-repeat's --count 2 does not repeat study items*",
            "*fix: set execution.n_cycles: 2 in the study*",
        ]
    )


def test_benchmark_only_skipping_every_study_item_is_said(
    pytester: pytest.Pytester, two_cycles: Path
) -> None:
    result = pytester.runpytest(*only("benchmark"), "--benchmark-only", "--llem-results=out")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        [
            "*all 2 study items were skipped, nothing was measured*--benchmark-only active*",
            "*--benchmark-only (pytest-benchmark) runs only tests that use its benchmark*",
        ]
    )


def test_html_shows_metrics_energy_source_and_warnings(
    pytester: pytest.Pytester, two_cycles: Path
) -> None:
    args = ["--html=report.html", "--self-contained-html", "--llem-results=out"]
    result = pytester.runpytest(*only("html"), *args)
    result.assert_outcomes(passed=2)
    page = (pytester.path / "report.html").read_text()
    for text in ("col-llem", "tok/s", "pytest-llem measurement", "energy source:", "validity"):
        assert text in page


def test_the_ids_sugar_prints_select_the_item(pytester: pytest.Pytester, two_cycles: Path) -> None:
    args = ["--force-sugar", "-v", "--llem-fail-on", ALWAYS_FAILS, "--llem-results=out"]
    result = pytester.runpytest_subprocess(*only("sugar"), *args)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    printed = re.findall(r"(study_re\.yaml::\S+)", result.stdout.str())
    assert "study_re.yaml::pytorch-c1" in printed
    assert all("::re::" not in p for p in printed)
    again = pytester.runpytest(*only(), "--collect-only", "-q", "study_re.yaml::pytorch-c1")
    again.stdout.fnmatch_lines(["study_re.yaml::pytorch-c1", "*1 test collected*"])


def test_cov_measures_a_study_session(pytester: pytest.Pytester, two_cycles: Path) -> None:
    args = ["--cov=pytest_llem", "--cov-report=term", "--llem-results=out"]
    result = pytester.runpytest_subprocess(*only("pytest_cov"), *args)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*coverage:*", "*TOTAL*"])
