"""How an item's container is created, the same for both strategies: image, command, mounts,
environment, GPU requests and labels in one set of create arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytest_llem.runners.docker.container_options import DockerOptions, parse_volume
from pytest_llem.runners.docker.exchange import MOUNT
from pytest_llem.runners.run_spec import RunSpec
from pytest_llem.study.experiment import ExperimentConfig

CONTAINER_HF_HOME = "/root/.cache/huggingface"
LABEL = "io.pytest-llem"


def mounts_for(spec: RunSpec, opts: DockerOptions) -> dict[str, dict[str, str]]:
    """Read-only mounts an item needs: its study directory, a local model, the HF cache."""
    out: dict[str, dict[str, str]] = {}
    base = Path(spec.base_dir) if spec.base_dir else None
    if base is not None:
        # Bind the real directory at the path the host uses, symlinks included, so paths in
        # the config mean the same inside.
        out[str(base.resolve())] = {"bind": str(base), "mode": "ro"}
    model = Path(spec.config.model).expanduser()
    if not model.is_absolute() and base is not None:
        model = base / model
    if model.exists() and (base is None or not str(model).startswith(str(base) + os.sep)):
        target = model if model.is_dir() else model.parent
        out[str(target.resolve())] = {"bind": str(target), "mode": "ro"}
    if opts.hf_cache:
        # rw: a model missing from the cache is downloaded once and kept for later items.
        out[opts.hf_cache] = {"bind": CONTAINER_HF_HOME, "mode": "rw"}
    for volume in opts.volumes:
        host, bind = parse_volume(volume)
        out[host] = bind
    return out


def environment(spec: RunSpec, opts: DockerOptions) -> dict[str, str]:
    """Environment for the container (never a token: that travels as a file)."""
    env = {"HF_HOME": CONTAINER_HF_HOME, "PYTHONUNBUFFERED": "1", **opts.env}
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "CUDA_DEVICE_ORDER"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def device_requests(config: ExperimentConfig) -> list[Any]:
    """GPU request for cuda points: the worker's pinned GPU, else all GPUs."""
    if config.device != "cuda":
        return []
    from docker.types import DeviceRequest

    pinned = os.environ.get("CUDA_VISIBLE_DEVICES")
    if pinned:
        ids = [d.strip() for d in pinned.split(",") if d.strip()]
        return [DeviceRequest(device_ids=ids, capabilities=[["gpu"]])]
    return [DeviceRequest(count=-1, capabilities=[["gpu"]])]


def run_labels(opts: DockerOptions) -> dict[str, str]:
    """Labels every container of this run carries (item containers and probes alike)."""
    return {LABEL: "1", f"{LABEL}.session": opts.session_id}


def labels(spec: RunSpec, opts: DockerOptions) -> dict[str, str]:
    """Labels that let a user (and the teardown) find pytest-llem's containers, per run."""
    return {
        **run_labels(opts),
        f"{LABEL}.point": spec.point_id,
        f"{LABEL}.config-hash": spec.config_hash,
    }


def command(opts: DockerOptions) -> list[str]:
    """The entrypoint command."""
    return [opts.python, "-m", "pytest_llem.runners.entrypoint"]


def create_kwargs(
    image: str,
    spec: RunSpec,
    opts: DockerOptions,
    exchange_root: Path,
    *,
    command: list[str],
    environment: dict[str, str],
    mounts: dict[str, dict[str, str]],
    labels: dict[str, str],
) -> dict[str, Any]:
    """Arguments of ``containers.create``/``containers.run`` for an item's container.

    ``exchange_root`` is mounted read-write at the exchange mount point; everything else the
    caller decides (the ephemeral runner runs the entrypoint, the persistent one idles).
    """
    return {
        "image": image,
        "command": command,
        "environment": environment,
        "volumes": {str(exchange_root): {"bind": MOUNT, "mode": "rw"}, **mounts},
        "shm_size": opts.shm_size,
        "labels": labels,
        "device_requests": device_requests(spec.config),
        "detach": True,
    }
