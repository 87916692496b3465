"""pytest-xdist integration: one worker per GPU, each pinned to its GPU, cycles kept together."""

from __future__ import annotations

import os

import pytest

from pytest_llem.energy import nvml


def gpu_uuids() -> list[str]:
    """UUIDs of the GPUs this process may use (honouring CUDA_VISIBLE_DEVICES); [] without NVML."""
    try:
        pynvml = nvml.load()
    except nvml.NvmlUnavailable:
        return []
    try:
        return [uuid for uuid, _ in nvml.all_handles(pynvml)]
    except (nvml.NvmlUnavailable, pynvml.NVMLError):
        return []
    finally:
        nvml.release(pynvml)


def auto_workers() -> int | None:
    """``-n auto``: one worker per GPU, or None (xdist's own default) without GPUs."""
    count = len(gpu_uuids())
    return count or None


def pin_worker_gpu(config: pytest.Config) -> str | None:
    """On an xdist worker, restrict CUDA to the worker's GPU (before anything imports CUDA).

    Worker ``gwN`` gets GPU ``N mod count``, addressed by UUID so CUDA's device order cannot
    pick a different GPU than NVML measures.
    """
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or os.environ.get("LLEM_NO_GPU_PINNING"):
        return None
    uuids = gpu_uuids()
    if not uuids:
        return None
    index = int(str(workerinput["workerid"]).removeprefix("gw")) % len(uuids)
    os.environ["CUDA_VISIBLE_DEVICES"] = uuids[index]
    return uuids[index]


def group_cycles(config: pytest.Config) -> None:
    """Make xdist keep every cycle of a config on one worker (``--dist loadgroup``)."""
    option = config.option
    if getattr(option, "numprocesses", None) and getattr(option, "dist", "no") in ("load", "no"):
        option.dist = "loadgroup"
