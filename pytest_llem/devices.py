"""A reference to a device an engine uses: the one type engines and energy meters share.

It lives beneath both layers so that engines never import an energy backend to name a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GpuRef:
    """A CUDA device the engine uses: its index as CUDA sees it and, when known, its UUID."""

    cuda_index: int
    uuid: str | None = None
