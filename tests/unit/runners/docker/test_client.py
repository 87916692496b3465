"""The docker client wrapper: unreachable APIs become ContainerErrors without leaking sockets."""

from __future__ import annotations

import contextlib
import gc
import socket
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_llem.runners.docker.client import client, reachable
from pytest_llem.runners.docker.errors import ContainerError


@pytest.fixture
def stale_socket(tmp_path: Path) -> Path:
    """A socket file whose service has died: it exists but refuses connections."""
    path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.close()
    return path


def resource_warnings(call: Callable[[], object]) -> list[str]:
    """ResourceWarnings raised while ``call`` runs and its garbage is collected."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with contextlib.suppress(Exception):
            call()
        gc.collect()
    return [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]


def test_stale_socket_is_a_container_error_with_the_fix(
    stale_socket: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{stale_socket}")
    with pytest.raises(ContainerError) as info:
        client()
    assert str(stale_socket) in info.value.message
    assert "podman system service" in info.value.fix
    assert reachable() is not None


def test_missing_socket_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/absent.sock")
    problem = reachable()
    assert problem is not None and "absent.sock does not exist" in problem


def test_a_refused_connection_leaks_no_socket(
    stale_socket: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{stale_socket}")
    assert resource_warnings(client) == []


def test_the_sdk_alone_would_leak_one(stale_socket: Path) -> None:
    # The reason client() probes first: proves resource_warnings() can see the leak at all.
    docker = pytest.importorskip("docker")
    leaked = resource_warnings(lambda: docker.DockerClient(base_url=f"unix://{stale_socket}"))
    assert any("unclosed <socket.socket" in w for w in leaked)
