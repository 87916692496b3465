"""The docker SDK client, created lazily, with its errors translated."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
from typing import Any

from pytest_llem.runners.docker.errors import ContainerError, DockerError, from_sdk

INSTALL_HINT = "pip install docker (a core dependency of pytest-llem)"


@functools.lru_cache(maxsize=4)
def _client(host: str | None) -> Any:
    # Cached per DOCKER_HOST: one connection pool per engine, re-created if the target moves.
    import docker

    # A pinned API version: with "auto" the constructor itself connects, and a failure there
    # leaves a socket we could never close. 1.41 is served by Docker 20.10+ and podman 4+.
    return docker.from_env(timeout=120, version=os.environ.get("DOCKER_API_VERSION", "1.41"))


def _unix_socket_problem(host: str | None) -> str | None:
    """Probe a unix socket ourselves: docker-py leaks the socket when its connect fails."""
    if host is not None and not host.startswith("unix://"):
        return None
    path = host[len("unix://") :] if host else "/var/run/docker.sock"
    if not os.path.exists(path):
        return f"socket {path} does not exist"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(5)
        try:
            probe.connect(path)
        except OSError as exc:
            return f"cannot connect to {path}: {exc.strerror or exc}"
    return None


def client() -> Any:
    """A docker SDK client for ``DOCKER_HOST`` (or the default socket).

    Raises:
        DockerError: the API is not reachable.
    """
    problem = _unix_socket_problem(os.environ.get("DOCKER_HOST"))
    if problem is not None:
        raise ContainerError(
            f"no Docker API: {problem}",
            "start Docker (or podman's API: `podman system service`) and set DOCKER_HOST",
        )
    api = None
    try:
        api = _client(os.environ.get("DOCKER_HOST"))
        api.ping()
    except Exception as exc:  # the SDK raises several unrelated types when unreachable
        _client.cache_clear()
        if api is not None:
            with contextlib.suppress(Exception):
                api.close()  # its half-open connection would otherwise leak a socket
        if isinstance(exc, DockerError):
            raise
        err = from_sdk(exc)
        raise type(err)(
            f"no Docker API: {err.message}",
            "start Docker (or podman's API: `podman system service`) and set DOCKER_HOST",
        ) from None
    return api


def reachable() -> str | None:
    """None when the Docker API answers; otherwise why not."""
    try:
        client()
    except DockerError as exc:
        return exc.message
    return None


def run_detached(api: Any, **kwargs: Any) -> Any:
    """Create and start a detached container; remove it when the start fails.

    ``containers.run`` leaves the created container behind when its start fails (a command
    missing in the image, a runtime error), where nothing would ever remove it.
    """
    box = api.containers.create(**{**kwargs, "detach": True})
    try:
        box.start()
    except BaseException:
        with contextlib.suppress(Exception):  # the start's own error is the one to report
            box.remove(force=True)
        raise
    return box
