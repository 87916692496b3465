"""The docker SDK client, created lazily, with its errors translated."""

from __future__ import annotations

import functools
from typing import Any

from pytest_llem.runners.docker.errors import DockerError, from_sdk

INSTALL_HINT = "pip install docker (a core dependency of pytest-llem)"


@functools.lru_cache(maxsize=1)
def _client() -> Any:
    import docker

    return docker.from_env(timeout=120)


def client() -> Any:
    """A docker SDK client for ``DOCKER_HOST`` (or the default socket).

    Raises:
        DockerError: the API is not reachable.
    """
    try:
        api = _client()
        api.ping()
    except Exception as exc:  # the SDK raises several unrelated types when unreachable
        _client.cache_clear()
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
