"""DockerError taxonomy: every container failure becomes one class with a fix and stderr.

Translation uses, in order: the container's own error file (the experiment's exception),
the SDK exception, the container state (OOMKilled), the exit code, and stderr patterns that
are specific to Docker and the NVIDIA toolkit (a Python ``FileNotFoundError`` in the
experiment is not an image-pull error).
"""

from __future__ import annotations

import re
from typing import Any

from pytest_llem.errors import RunnerError

SNIPPET_LINES = 20


class DockerError(RunnerError):
    """A container failure, with a fix suggestion and the last lines of stderr."""

    default_fix = "see the container output below"

    def __init__(
        self, message: str, fix_suggestion: str | None = None, stderr_snippet: str = ""
    ) -> None:
        self.fix_suggestion = fix_suggestion or self.default_fix
        self.stderr_snippet = stderr_snippet
        super().__init__(message, self.fix_suggestion)

    def __str__(self) -> str:
        text = f"{self.message}\n  fix: {self.fix_suggestion}"
        if self.stderr_snippet:
            indented = "\n".join("    " + line for line in self.stderr_snippet.splitlines())
            text += f"\n  container output (last lines):\n{indented}"
        return text


class ImagePullError(DockerError):
    """The image is not present and cannot be pulled."""

    default_fix = "build the image (images/Dockerfile.<backend>) or docker login, then retry"


class GPUAccessError(DockerError):
    """The container cannot see the GPUs."""

    default_fix = (
        "install the NVIDIA Container Toolkit and check `docker run --gpus all <image> nvidia-smi`"
    )


class OOMError(DockerError):
    """Out of memory (host OOM killer, exit 137, or CUDA OOM inside)."""

    default_fix = "lower batch_size/max tokens, raise the memory limit, or free the GPU"


class DockerPermissionError(DockerError):
    """The Docker API refused us (socket permissions, rootless limits)."""

    default_fix = "add your user to the docker group, or set DOCKER_HOST to a socket you may use"


class DockerTimeoutError(DockerError):
    """The item outlived its timeout; the container was killed and removed."""

    default_fix = "raise llem_docker_timeout, or shorten the study (n, max_output_tokens)"


class ContainerError(DockerError):
    """Anything else that went wrong in or around the container."""


_GPU = re.compile(
    r"could not select device driver|nvidia-container-cli|unknown or invalid runtime name: nvidia"
    r"|CUDA driver version is insufficient|no CUDA-capable device is detected"
    r"|Failed to initialize NVML",
    re.IGNORECASE,
)
_PULL = re.compile(
    r"pull access denied|manifest unknown|repository does not exist|no such image"
    r"|requested access to the resource is denied|image not known",
    re.IGNORECASE,
)
_PERMISSION = re.compile(
    r"permission denied while trying to connect|connect: permission denied", re.I
)
_CUDA_OOM = re.compile(r"CUDA out of memory|OutOfMemoryError", re.IGNORECASE)


def snippet(text: str, lines: int = SNIPPET_LINES) -> str:
    """The last ``lines`` lines of ``text``."""
    return "\n".join(text.strip().splitlines()[-lines:])


def from_exit(
    exit_code: int, oom_killed: bool, stderr: str, error: dict[str, Any] | None
) -> DockerError:
    """Translate a finished container (non-zero exit) into a DockerError."""
    tail = snippet(stderr)
    if error is not None:
        kind, message = str(error.get("type", "Error")), str(error.get("message", ""))
        if kind in ("OutOfMemoryError", "OOMError") or _CUDA_OOM.search(message):
            return OOMError(
                f"out of memory inside the container: {kind}: {message}", stderr_snippet=tail
            )
        fix = error.get("fix") or "see the error and traceback above"
        return ContainerError(
            f"the experiment failed in the container: {kind}: {message}", str(fix), tail
        )
    if oom_killed:
        return OOMError(f"the container was OOM-killed (exit {exit_code})", stderr_snippet=tail)
    if exit_code == 137:
        return OOMError(
            "the container was killed (exit 137, SIGKILL): usually out of memory",
            stderr_snippet=tail,
        )
    if _GPU.search(stderr):
        return GPUAccessError(
            f"the container cannot use the GPU (exit {exit_code})", stderr_snippet=tail
        )
    if _CUDA_OOM.search(stderr):
        return OOMError(f"CUDA out of memory (exit {exit_code})", stderr_snippet=tail)
    return ContainerError(
        f"the container exited with code {exit_code} and wrote no result", stderr_snippet=tail
    )


def from_sdk(exc: BaseException, image: str | None = None) -> DockerError:
    """Translate a docker SDK exception (raised before or around the container)."""
    import docker.errors

    text = str(getattr(exc, "explanation", None) or exc)
    if isinstance(exc, docker.errors.ImageNotFound) or _PULL.search(text):
        return ImagePullError(f"image {image!r} is not available: {text}")
    if (
        _PERMISSION.search(text)
        or getattr(getattr(exc, "response", None), "status_code", None) == 403
    ):
        return DockerPermissionError(f"the Docker API refused access: {text}")
    if _GPU.search(text):
        return GPUAccessError(f"the container cannot use the GPU: {text}")
    return ContainerError(
        f"Docker API error: {type(exc).__name__}: {text}",
        "check that the Docker (or podman) API is reachable: docker version",
    )
