"""A third-party backend registered from a conftest through ``pytest_llem_backends`` runs a
study end to end: its section in the grammar, its marker, its engine, the JSON report and the
gate, with no pytest-llem module naming it."""

from __future__ import annotations

import json

import pytest

from tests.echo import CONFTEST, ECHO_BACKEND, STUDY


@pytest.fixture
def echo(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(echo_backend=ECHO_BACKEND)
    pytester.syspathinsert()
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".yaml", study_echo=STUDY)
    return pytester


def test_a_conftest_backend_runs_a_study_end_to_end(echo: pytest.Pytester) -> None:
    result = echo.runpytest("--llem-results=out", "-m", "echo", "-v")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*study_echo.yaml::echo-repeat-1-c1 PASSED*"])
    report = json.loads((echo.path / "out" / "report.json").read_text())
    items = report["items"]
    assert {i["point_id"] for i in items} == {"echo-repeat-1", "echo-repeat-3"}
    for item in items:
        assert item["config"]["backend"] == "echo"
        assert item["config"]["echo"]["batch"] == 2
        # The engine's facts, beside the protocol's own (each window's host figures).
        assert item["environment"]["echo"] == "1.0" and "windows" in item["environment"]
        assert item["gate"]["status"] == "pass"
        assert item["energy"]["source"] is None and item["energy"]["reason"]  # never invented
    tokens = {i["point_id"]: i["metrics"]["output_tokens"] for i in items}
    assert tokens == {"echo-repeat-1": 4 + 5 + 6 + 7, "echo-repeat-3": 8 * 4}
    # One load key (the engine module's load_key): loaded once, reused by the other 3 items.
    assert [i["model_cached"] for i in items] == [False, True, True, True]


def test_a_plugin_backends_collection_check_and_build_note(echo: pytest.Pytester) -> None:
    result = echo.runpytest("--llem-results=out")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*pre-flight: echo 1.0 (pure Python)*"])
    echo.makefile(".yaml", study_echo=STUDY.replace("[1, 3]", "[1, 11]"))
    result = echo.runpytest("--llem-results=out")
    result.stdout.fnmatch_lines(
        [
            "*echo.repeat: echo 1.0 repeats at most 10 times (point echo-repeat-11)*",
            "*fix: use echo.repeat <= 10*",
        ]
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED  # a collection error stops the session


def test_the_gate_judges_a_plugin_backend(echo: pytest.Pytester) -> None:
    result = echo.runpytest("--llem-results=out", "--llem-fail-on=output_tokens_per_s>1e15")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(["*GateFailure: regression gate failed for echo-repeat*"])


def test_unknown_backends_get_a_suggestion_from_the_registry(echo: pytest.Pytester) -> None:
    echo.makefile(".yaml", study_echo=STUDY.replace("backend: echo", "backend: ecko"))
    result = echo.runpytest("--llem-results=out")
    result.stdout.fnmatch_lines(["*backend: unknown backend 'ecko'", "*fix: did you mean 'echo'?"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


def test_the_section_is_checked_by_the_backends_model(echo: pytest.Pytester) -> None:
    echo.makefile(".yaml", study_echo=STUDY.replace("echo: {batch: 2}", "echo: {batch: 0}"))
    result = echo.runpytest("--llem-results=out", "-rs")
    result.stdout.fnmatch_lines(["*echo.batch*greater than or equal to 1*"])


def test_a_backend_registered_twice_differently_is_a_usage_error(echo: pytest.Pytester) -> None:
    echo.makeconftest(
        CONFTEST
        + "\nimport dataclasses\n"
        + "def pytest_llem_backends():\n"
        + "    return [ECHO, dataclasses.replace(ECHO, engine='elsewhere:Engine')]\n"
    )
    result = echo.runpytest("--llem-results=out")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*backend 'echo' is registered twice, differently*"])


def test_a_plugin_backend_has_no_default_image(echo: pytest.Pytester) -> None:
    # This project's registry has no image of a backend from another package: say so, with
    # the way out, instead of pulling ghcr.io/llenergymeasure/echo.
    result = echo.runpytest("--llem-results=out", "--llem-runner=echo=docker", "-rf")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "*backend echo runs in Docker here but has no default image*",
            "*fix: name one: --llem-runner echo=docker:IMAGE*",
        ]
    )
    result.stdout.no_fnmatch_line("*llenergymeasure/echo*")
