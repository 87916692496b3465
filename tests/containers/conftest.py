"""Real containers through a Docker-compatible API (podman in CI). Skipped without one."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

TEST_IMAGE = os.environ.get("LLEM_TEST_IMAGE", "localhost/llem-test:latest")
PROJECT = Path(__file__).resolve().parents[2]


def unavailable(why: str) -> None:
    """Skip, unless the run promised containers (CI sets LLEM_REQUIRE_CONTAINERS after setup)."""
    if os.environ.get("LLEM_REQUIRE_CONTAINERS") == "1":
        pytest.fail(f"container tests required but {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def docker_api() -> Any:
    """A docker SDK client; skips when no API answers or the test image is missing."""
    pytest.importorskip("docker")
    from pytest_llem.runners.docker.client import client
    from pytest_llem.runners.docker.errors import DockerError

    # The plugin's own client: docker.from_env leaks its socket when the API refuses the
    # connection (a stale socket file), which `-W error` turns into a failed session.
    try:
        api = client()
    except DockerError as exc:
        unavailable(
            f"no Docker-compatible API reachable (DOCKER_HOST={os.environ.get('DOCKER_HOST')}): "
            f"{exc.message}"
        )
    try:
        api.images.get(TEST_IMAGE)
    except Exception:
        unavailable(f"test image {TEST_IMAGE} missing: build it with images/test/build.sh")
    return api


def host_mounts() -> list[str]:
    """What the almost-empty test image needs from the host, read-only."""
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
    return sorted(p for p in paths | real if Path(p).exists())


@pytest.fixture
def mounts() -> list[str]:
    """Host paths the test image needs."""
    return host_mounts()


@pytest.fixture
def container_ini(pytester: pytest.Pytester, docker_api: Any) -> str:
    """An ini that makes the test image run this checkout with this virtual environment."""
    volumes = "\n".join(f"    {p}" for p in host_mounts())
    text = (
        "[pytest]\n"
        f"llem_docker_python = {sys.executable}\n"
        "llem_docker_hf_cache = none\n"
        f"llem_docker_volumes =\n{volumes}\n"
    )
    pytester.makeini(text)
    return text


@pytest.fixture
def llem_containers(pytester: pytest.Pytester, docker_api: Any) -> Any:
    """The containers of the last pytester run (``--llem-results=out``) that exist right now.

    Selected by the run's session label, so tests running in parallel never see each other's.
    """

    def list_them() -> list[Any]:
        report = json.loads((pytester.path / "out" / "report.json").read_text())
        session = report["session"]["id"]
        assert session, "the report names its session"
        label = f"io.pytest-llem.session={session}"
        return docker_api.containers.list(all=True, filters={"label": label})

    return list_them


@pytest.fixture
def backend_in_containers(pytester: pytest.Pytester, container_ini: str) -> Any:
    """Install a test backend module (its source, conftest and study) for runs in containers.

    The module lands in the pytester directory, which the container sees on its PYTHONPATH.
    """

    def install(module: str, source: str, conftest: str, study: str) -> None:
        pytester.makepyfile(**{module: source})
        pytester.syspathinsert()
        pytester.makeconftest(conftest)
        pytester.makefile(".yaml", **{f"study_{module}": study})
        pytester.makeini(container_ini + f"llem_docker_env =\n    PYTHONPATH={pytester.path}\n")

    return install
