"""Image names: a backend's registry template (the built-in backends use this project's,
``ghcr.io/llenergymeasure/{backend}:{version}-cuda{major}``).

The default tag follows the host's CUDA major (the toolkit's, else the driver's: R580 and
newer drivers report CUDA 13). The project publishes images for ``PUBLISHED_CUDA_MAJORS``
only (.github/workflows/release-images.yml); for any other major, pre-flight says so and names
the image to pass instead of failing on a pull of a tag that does not exist.
"""

from __future__ import annotations

import functools
import re
import subprocess
from typing import Any

from pytest_llem.energy import nvml
from pytest_llem.study.backends import PROJECT_IMAGE

# The CUDA majors release-images.yml builds; keep the two in step (a test reads both).
PUBLISHED_CUDA_MAJORS = (12, 13)


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


def unpublished_default(
    backend: str, version: str, major: int | None, template: str = PROJECT_IMAGE
) -> tuple[str, str] | None:
    """(problem, fix) when this project's default image for the host's CUDA is not published;
    None when it is, or when ``template`` is another registry's (it knows its own tags)."""
    if template != PROJECT_IMAGE or major in PUBLISHED_CUDA_MAJORS:
        return None
    tag = default_image(backend, version, major, template)
    # A driver runs images built for its own CUDA major or an older one.
    usable = [m for m in PUBLISHED_CUDA_MAJORS if major is None or m <= major]
    if major is None:
        host = "no CUDA version was detected on this host (neither nvcc nor the NVIDIA driver)"
    else:
        host = f"this host reports CUDA {major}"
    published = ", ".join(f"-cuda{m}" for m in PUBLISHED_CUDA_MAJORS)
    problem = (
        f"the default image {tag} does not exist: {host}, and images are published for "
        f"{published} only"
    )
    if usable:
        image = default_image(backend, version, max(usable), template)
        fix = f"pass --llem-runner {backend}=docker:{image} (a driver runs older CUDA images)"
    else:
        fix = (
            f"build images/Dockerfile.{backend} for your CUDA and pass "
            f"--llem-runner {backend}=docker:IMAGE"
        )
    return problem, fix


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
