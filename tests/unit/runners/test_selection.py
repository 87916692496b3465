"""Runner resolution precedence and value parsing."""

from __future__ import annotations

import pytest

from pytest_llem.engines.builtin import BUILTIN
from pytest_llem.runners.selection import RunnerSpec, elevate, parse_cli, resolve, unknown_backends
from pytest_llem.study.sections import RunnersConfig, parse_runner_value


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("local", ("local", None)),
        ("docker", ("docker", None)),
        ("docker:ghcr.io/x/y:1.0", ("docker", "ghcr.io/x/y:1.0")),
    ],
)
def test_parse_runner_value(value: str, parsed: tuple[str, str | None]) -> None:
    assert parse_runner_value(value) == parsed


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("docker:", "names no image"),
        ("podman", "allowed: 'local'"),
        ("docker:bad image;rm -rf /", "not a valid image"),
    ],
)
def test_bad_runner_values(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_runner_value(value)


def test_precedence_env_cli_study_ini_default() -> None:
    study = RunnersConfig(vllm="docker:study-image")
    ini = {"vllm": "docker:ini-image", "pytorch": "docker"}
    cli = {"vllm": "docker:cli-image"}
    env = {"LLEM_RUNNER_VLLM": "docker:env-image"}
    assert resolve("vllm", cli, study, ini, env) == RunnerSpec("docker", "env-image", "env")
    assert resolve("vllm", cli, study, ini, {}) == RunnerSpec("docker", "cli-image", "cli")
    assert resolve("vllm", {}, study, ini, {}) == RunnerSpec("docker", "study-image", "study")
    assert resolve("pytorch", {}, study, ini, {}) == RunnerSpec("docker", None, "ini")
    assert resolve("pytorch", {}, RunnersConfig(), {}, {}) == RunnerSpec("local", None, "default")


def test_env_errors_name_the_variable() -> None:
    with pytest.raises(ValueError, match="LLEM_RUNNER_VLLM"):
        resolve("vllm", {}, RunnersConfig(), {}, {"LLEM_RUNNER_VLLM": "docker:"})


def test_cli_forms_and_elevation() -> None:
    every = parse_cli("docker")
    assert resolve("vllm", every, RunnersConfig(), {}, {}) == RunnerSpec("docker", None, "cli")
    assert resolve("pytorch", every, RunnersConfig(), {}, {}).mode == "docker"
    assert parse_cli("vllm=docker:img, pytorch=local") == {"vllm": "docker:img", "pytorch": "local"}
    # Names are checked against the session's registry once it is built.
    problem = unknown_backends(parse_cli("tensorrt=docker"), BUILTIN.names)
    assert problem == "--llem-runner: unknown backend 'tensorrt'; use one of ['pytorch', 'vllm']"
    assert unknown_backends(every, BUILTIN.names) is None
    specs = elevate(
        {"pytorch": RunnerSpec("local", None, "default"), "vllm": RunnerSpec("docker", "i", "cli")}
    )
    assert specs["pytorch"] == RunnerSpec("docker", None, "auto-elevated")
    assert specs["vllm"].source == "cli"
