"""Docker pre-flight, once per (image, device kind): API, image, GPU access in the run image."""

from __future__ import annotations

import contextlib
from typing import Any

from pytest_llem.energy import nvml
from pytest_llem.preflight.check import Check
from pytest_llem.runners.docker import create
from pytest_llem.runners.docker.client import client, run_detached
from pytest_llem.runners.docker.container_options import DockerOptions, parse_volume
from pytest_llem.runners.docker.errors import DockerError
from pytest_llem.runners.docker.images import pull_if_missing

# Runs inside the image: the driver version NVML reports, or the NVML error.
GPU_PROBE = (
    "import pynvml\n"
    "try:\n"
    "    pynvml.nvmlInit()\n"
    "    n = pynvml.nvmlDeviceGetCount()\n"
    "    print('LLEM-GPU', n, pynvml.nvmlSystemGetDriverVersion())\n"
    "except Exception as exc:\n"
    "    print('LLEM-NOGPU', type(exc).__name__, exc)\n"
)


def host_driver() -> str | None:
    """The host's NVIDIA driver version, when NVML works here."""

    def driver(pynvml: Any) -> str | None:
        value = pynvml.nvmlSystemGetDriverVersion()
        return value.decode() if isinstance(value, bytes) else str(value)

    return nvml.query(driver, None)


def gpu_probe(api: Any, image: str, opts: DockerOptions) -> tuple[Check | None, str | None]:
    """Run the GPU probe in the run image with a GPU request: (problem, warning)."""
    from docker.types import DeviceRequest

    volumes = dict(parse_volume(v) for v in opts.volumes)
    box = None
    try:
        box = run_detached(
            api,
            image=image,
            command=[opts.python, "-c", GPU_PROBE],
            volumes=volumes,
            device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])],
            labels={**create.run_labels(opts), f"{create.LABEL}.probe": "gpu"},
        )
        box.wait(timeout=120)
        out = box.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
    except Exception as exc:  # the SDK's many error types all mean "no GPU in the container"
        return Check(
            "gpu",
            f"GPU probe container in {image} failed: {exc}",
            "install the NVIDIA Container Toolkit; check `docker run --gpus all ...`",
        ), None
    finally:
        if box is not None:
            with contextlib.suppress(Exception):
                box.remove(force=True)
    line = next((ln for ln in out.splitlines() if ln.startswith(("LLEM-GPU", "LLEM-NOGPU"))), "")
    if not line.startswith("LLEM-GPU"):
        detail = line.removeprefix("LLEM-NOGPU").strip() or out.strip()[-300:]
        return Check(
            "gpu",
            f"no GPU inside {image}: {detail}",
            "install the NVIDIA Container Toolkit and request GPUs (the plugin sends "
            "a DeviceRequest); check `docker run --gpus all <image> nvidia-smi`",
        ), None
    driver = line.split()[2] if len(line.split()) > 2 else None
    host = host_driver()
    warning = None
    if host and driver and host != driver:
        warning = f"driver mismatch: host {host}, container {driver} ({image})"
    return None, warning


def check(image: str, cuda: bool, opts: DockerOptions) -> tuple[list[Check], list[str]]:
    """All problems (and warnings) for running items of this kind in ``image``."""
    try:
        api = client()
    except DockerError as exc:
        return [Check("docker", exc.message, exc.fix or "")], []
    try:
        pull_if_missing(api, image)
    except DockerError as exc:
        return [Check("image", exc.message, exc.fix or "")], []
    if not cuda:
        return [], []
    problem, warning = gpu_probe(api, image, opts)
    return ([problem] if problem else []), ([warning] if warning else [])
