"""``--llem-export`` through a real session (the echo backend: no model to load): the files
github-action-benchmark reads, and the Bencher Metric Format, from the same results."""

from __future__ import annotations

import json
import re

import pytest

from tests.echo import CONFTEST, ECHO_BACKEND, STUDY


@pytest.fixture
def echo(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(echo_backend=ECHO_BACKEND)
    pytester.syspathinsert()
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".yaml", study_echo=STUDY)  # 2 configs x 2 cycles, no energy meter
    return pytester


def test_github_benchmark_and_bmf_files_from_one_session(echo: pytest.Pytester) -> None:
    result = echo.runpytest(
        "--llem-results=out", "--llem-export", "github-benchmark=trend/bench,bmf=bmf.json"
    )
    result.assert_outcomes(passed=4)
    bench = echo.path / "trend" / "bench"
    result.stdout.fnmatch_lines(
        [
            f"github-action-benchmark: {bench / 'smaller-is-better.json'} (* entries, tool "
            f"customSmallerIsBetter), {bench / 'bigger-is-better.json'} (4 entries, tool "
            "customBiggerIsBetter)",
            f"Bencher Metric Format: {echo.path / 'bmf.json'}",
        ]
    )
    bigger = json.loads((bench / "bigger-is-better.json").read_text())
    smaller = json.loads((bench / "smaller-is-better.json").read_text())
    assert [e["name"] for e in bigger] == [
        f"echo/echo-repeat-{r} {m}"
        for r in (1, 3)
        for m in ("output_tokens_per_s", "input_tokens_per_s")
    ]
    for entry in bigger + smaller:
        assert set(entry) == {"name", "value", "unit", "range", "extra"}
        assert isinstance(entry["value"], float) and entry["value"] > 0
        assert re.fullmatch(r"± \d\S*", entry["range"])
        assert entry["extra"].startswith("cycles: 2\ncv: ")
        assert "energy: not measured (" in entry["extra"]
    assert {e["name"].split()[1] for e in smaller} >= {"latency_p50_s", "latency_p99_s"}
    assert not any("energy" in e["name"] for e in smaller)  # echo measures none: no zeros
    bmf = json.loads((echo.path / "bmf.json").read_text())
    assert set(bmf) == {"echo/echo-repeat-1", "echo/echo-repeat-3"}
    for name, measures in bmf.items():
        tok_s = next(e for e in bigger if e["name"] == f"{name} output_tokens_per_s")
        measure = measures["output_tokens_per_s"]
        assert measure["value"] == pytest.approx(tok_s["value"])
        assert measure["lower_value"] <= measure["value"] <= measure["upper_value"]
        assert "energy_j" not in measures


def test_a_bad_export_value_is_a_usage_error_naming_the_option(echo: pytest.Pytester) -> None:
    result = echo.runpytest("--llem-export=github-benchmarks=trend")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--llem-export: 'github-benchmarks=trend': expected KIND=PATH with KIND one of*"]
    )
    assert not (echo.path / "trend").exists()
