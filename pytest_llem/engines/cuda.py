"""CUDA device identity as torch sees it, shared by the engines."""

from __future__ import annotations

from collections.abc import Iterable

from pytest_llem.devices import GpuRef


def gpu_refs(indices: Iterable[int]) -> list[GpuRef]:
    """GpuRefs for CUDA indices, with the UUIDs torch reports when it can see CUDA."""
    try:
        import torch
    except ImportError:
        return [GpuRef(i) for i in indices]
    if not torch.cuda.is_available():
        return [GpuRef(i) for i in indices]
    refs = []
    for index in indices:
        uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
        # torch prints the UUID without NVML's "GPU-" prefix
        refs.append(GpuRef(index, f"GPU-{uuid}" if uuid is not None else None))
    return refs
