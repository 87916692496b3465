"""The DockerError taxonomy: specific patterns, no misfires."""

from __future__ import annotations

import docker.errors
import pytest
import requests

from pytest_llem.runners.docker.errors import (
    ContainerError,
    DockerPermissionError,
    GPUAccessError,
    ImagePullError,
    OOMError,
    from_exit,
    from_sdk,
)


def test_exit_codes_and_state() -> None:
    assert isinstance(from_exit(137, True, "", None), OOMError)
    assert "SIGKILL" in from_exit(137, False, "", None).message
    err = from_exit(
        1,
        False,
        'docker: Error response from daemon: could not select device driver "" with capabilities: [[gpu]]',
        None,
    )
    assert (
        isinstance(err, GPUAccessError)
        and err.fix_suggestion
        and "Container Toolkit" in err.fix_suggestion
    )
    assert isinstance(
        from_exit(2, False, "RuntimeError: CUDA out of memory. Tried to allocate", None), OOMError
    )


def test_python_errors_in_the_experiment_are_not_pull_errors() -> None:
    failure = {
        "type": "FileNotFoundError",
        "message": "[Errno 2] No such file or directory: 'prompts.jsonl'",
    }
    err = from_exit(1, False, "Traceback ...\nFileNotFoundError: no such image.txt", failure)
    assert type(err) is ContainerError and "FileNotFoundError" in err.message
    oom = from_exit(1, False, "", {"type": "OutOfMemoryError", "message": "CUDA out of memory"})
    assert isinstance(oom, OOMError)


def test_stderr_snippet_keeps_the_last_lines() -> None:
    err = from_exit(5, False, "\n".join(f"line {i}" for i in range(100)), None)
    assert err.stderr_snippet.splitlines() == [f"line {i}" for i in range(80, 100)]
    assert "container output (last lines):" in str(err) and "line 99" in str(err)


def response(status: int) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    return r


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (docker.errors.ImageNotFound("no such image: x"), ImagePullError),
        (
            docker.errors.APIError(
                "500",
                response=response(500),
                explanation="pull access denied for x, repository does not exist",
            ),
            ImagePullError,
        ),
        (
            docker.errors.APIError("403", response=response(403), explanation="forbidden"),
            DockerPermissionError,
        ),
        (
            docker.errors.DockerException(
                "Error while fetching server API version: permission denied while trying to connect to the Docker daemon socket"
            ),
            DockerPermissionError,
        ),
        (
            docker.errors.APIError(
                "500", response=response(500), explanation="unknown or invalid runtime name: nvidia"
            ),
            GPUAccessError,
        ),
        (
            docker.errors.APIError("500", response=response(500), explanation="conflict"),
            ContainerError,
        ),
    ],
)
def test_sdk_exceptions(exc: Exception, kind: type) -> None:
    assert type(from_sdk(exc, "img")) is kind
