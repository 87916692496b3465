"""Image names: a backend's registry template (the built-in backends use this project's,
``ghcr.io/llenergymeasure/{backend}:{version}-cuda{major}``)."""

from __future__ import annotations

import functools
import re
import subprocess
from typing import Any

from pytest_llem.energy import nvml
from pytest_llem.study.backends import PROJECT_IMAGE


@functools.lru_cache(maxsize=1)
def cuda_major() -> int | None:
    """The host's CUDA major version: ``nvcc --version``, else the driver's (NVML); cached."""
    try:
        out = subprocess.run(
            ["nvcc", "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        match = re.search(r"release (\d+)\.", out.stdout)
        if match:
            return int(match.group(1))
    except (OSError, subprocess.SubprocessError):
        pass  # no toolkit: ask the driver
    return nvml.query(lambda pynvml: int(pynvml.nvmlSystemGetCudaDriverVersion()) // 1000, None)


def default_image(
    backend: str, version: str, major: int | None, template: str = PROJECT_IMAGE
) -> str:
    """The default image of a backend (its registry template) for this version and CUDA."""
    cuda = f"-cuda{major}" if major is not None else ""
    return template.format(backend=backend, version=version, cuda=cuda)


def package_version() -> str:
    """The installed pytest-llem version."""
    from importlib.metadata import version

    return version("pytest-llem")


def pull_if_missing(api: Any, image: str) -> str | None:
    """Make sure ``image`` is present (pulling it if not); return its digest or id.

    Raises:
        ImagePullError: not present and not pullable.
    """
    from pytest_llem.runners.docker.errors import ImagePullError, from_sdk

    try:
        found = api.images.get(image)
    except Exception:  # ImageNotFound, or an API error: try pulling
        try:
            found = api.images.pull(image)
        except Exception as exc:
            err = from_sdk(exc, image)
            raise ImagePullError(
                f"image {image!r} is not present and cannot be pulled: {err.message}",
                "build it from images/Dockerfile.<backend>, docker login, or choose another image "
                "with --llem-runner docker:<image>",
            ) from None
    digests = found.attrs.get("RepoDigests") or []
    return str(digests[0]) if digests else str(found.id)


FALLBACK_PYTHON = "python3"


def entry_python(api: Any, image: str) -> str:
    """The interpreter an image runs the entrypoint with: its CMD's first word when the CMD is
    ``<python> -m pytest_llem.runners.entrypoint`` (or any ``python*`` command), else ``python3``.

    Images name their Python differently: vLLM's has ``python3`` and no ``python``, a venv has
    both. Asking the image beats guessing one name for all.

    Raises:
        ImagePullError: the image is not present and cannot be pulled.
    """
    pull_if_missing(api, image)
    try:
        cmd = api.images.get(image).attrs.get("Config", {}).get("Cmd") or []
    except Exception:  # an API hiccup: the fallback is right for most images
        return FALLBACK_PYTHON
    if cmd and cmd[0].rsplit("/", 1)[-1].startswith("python"):
        return str(cmd[0])
    return FALLBACK_PYTHON
