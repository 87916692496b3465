"""Option resolution: cli > ini > default, and bad values name the option they came from."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_llem.plugin import SETTINGS_KEY


def test_cli_beats_ini_beats_default(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllem_max_items = 50\nllem_energy = null\n")
    config = pytester.parseconfigure("--llem-max-items=7")
    settings = config.stash[SETTINGS_KEY]
    assert settings.max_items == 7 and settings.sources["max_items"] == "cli"
    assert settings.energy == "null" and settings.sources["energy"] == "ini"
    assert settings.docker.max_restarts == 3 and settings.sources["persistent_max_restarts"] == (
        "default"
    )


def test_zero_is_a_setting_not_a_missing_value(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        "[pytest]\nllem_persistent_max_restarts = 0\nllem_persistent_gpu_memory_mb = 0\n"
    )
    docker = pytester.parseconfigure().stash[SETTINGS_KEY].docker
    assert docker.max_restarts == 0
    assert docker.gpu_memory_threshold_mb == 0.0


def test_the_persistent_worker_is_on_unless_switched_off(pytester: pytest.Pytester) -> None:
    assert pytester.parseconfigure().stash[SETTINGS_KEY].docker.worker is True
    pytester.makeini("[pytest]\nllem_persistent_worker = false\n")
    assert pytester.parseconfigure().stash[SETTINGS_KEY].docker.worker is False


@pytest.mark.parametrize(
    ("ini", "args", "message"),
    [
        (
            "",
            ["--llem-max-items=many"],
            "--llem-max-items: expected a positive integer, got 'many'",
        ),
        (
            "llem_persistent_max_restarts = -1",
            [],
            "ini llem_persistent_max_restarts: expected an integer >= 0, got '-1'",
        ),
        (
            "llem_docker_timeout = soon",
            [],
            "ini llem_docker_timeout: expected a number, got 'soon'",
        ),
        (
            "",
            ["--llem-inconclusive=ignore"],
            "--llem-inconclusive: expected fail or warn, got 'ignore'",
        ),
        (
            "llem_max_cv = 5",
            [],
            "ini llem_max_cv: expected a positive percentage such as 5%, got '5'",
        ),
        # Converters that already name their option are not prefixed a second time.
        ("", ["--llem-energy=solar"], "--llem-energy must be one of *, got 'solar'"),
    ],
)
def test_a_bad_value_names_its_option(
    pytester: pytest.Pytester, ini: str, args: list[str], message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert "Traceback" not in result.stderr.str()
    assert "--llem-energy: --llem-energy" not in result.stderr.str()


def test_gate_policy_settings(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllem_inconclusive = warn\nllem_max_cv = 7.5%\n")
    settings = pytester.parseconfigure("--llem-save-baseline-force").stash[SETTINGS_KEY]
    assert settings.inconclusive == "warn" and settings.sources["inconclusive"] == "ini"
    assert settings.max_cv == 0.075 and settings.save_baseline_force
    strict = pytester.parseconfigure("--llem-inconclusive=fail").stash[SETTINGS_KEY]
    assert strict.inconclusive == "fail" and strict.sources["inconclusive"] == "cli"


def test_help_with_percent_signs_does_not_crash(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*--llem-fail-on=LIMITS*", "*--llem-inconclusive=fail|warn*"])


def test_a_secret_looking_container_variable_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllem_docker_env =\n    MY_API_TOKEN=abc123456\n")
    result = pytester.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*llem_docker_env: MY_API_TOKEN looks like a secret*"])


def test_run_wide_overrides_reach_every_study(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: Callable[..., str]
) -> None:
    text = fast_study(tiny_gpt2).replace(
        "validity: {min_window_s: 0,", "validity: {on_disturbed: fail, min_window_s: 0,"
    )
    pytester.makefile(".yaml", study_o=text)
    result = pytester.runpytest("--llem-results=out", "--llem-cycles=2", "--llem-on-disturbed=warn")
    result.stdout.fnmatch_lines(
        [
            "Study o ?*?: 1 config x 2 cycles = 2 items",
            "*note: study_o.yaml: 2 cycles per config (set for this run; the file says "
            "execution.n_cycles: 1)",
        ]
    )
    items = json.loads((pytester.path / "out" / "report.json").read_text())["items"]
    assert [i["cycle"] for i in items] == [1, 2]
    assert {i["config"]["validity"]["on_disturbed"] for i in items} == {"warn"}
    bad = pytester.runpytest("--llem-on-disturbed=ignore")
    bad.stderr.fnmatch_lines(["*--llem-on-disturbed*expected warn, retry or fail, got 'ignore'*"])
