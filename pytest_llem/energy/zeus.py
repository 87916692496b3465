"""Zeus (``zeus`` package, optional extra) as an energy source.

An empty ``gpu_energy`` (a time-only measurement) is "no energy", never zero joules.

Zeus parses ``CUDA_VISIBLE_DEVICES`` as integer NVML indices, while the plugin pins each xdist
worker to its GPU by UUID (``workers.pin_worker_gpu``). While Zeus initialises, UUID entries are
rewritten to the NVML indices of the same GPUs, in the same order, so that Zeus's index ``i``
is still CUDA's device ``i``; the variable is restored at once (CUDA has read it already).
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid as uuidlib
from collections.abc import Iterator
from typing import Any

from pytest_llem.energy import nvml
from pytest_llem.energy.meter import EnergyReading, MeterInfo

INSTALL_HINT = 'pip install "pytest-llem[zeus]"'


class ZeusUnavailable(Exception):  # noqa: N818 - a probe outcome carrying the reason
    """Zeus cannot be used here; ``str()`` is the reason."""


def _monitor_class() -> Any:
    try:
        from zeus.monitor import ZeusMonitor
    except ImportError as exc:
        raise ZeusUnavailable(
            f"no Zeus: the zeus package is not installed ({exc}); {INSTALL_HINT}"
        ) from None
    return ZeusMonitor


def _nvml_indices(entries: list[str]) -> list[str] | None:
    """NVML indices of ``CUDA_VISIBLE_DEVICES`` entries (UUIDs or indices); None if unknown."""

    def lookup(pynvml: Any) -> list[str] | None:
        by_uuid = {}
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            by_uuid[nvml.as_text(pynvml.nvmlDeviceGetUUID(handle))] = str(index)
        out = [by_uuid.get(e) if e.startswith(("GPU-", "MIG-")) else e for e in entries]
        return None if None in out else [str(e) for e in out]

    return nvml.query(lookup, None)


@contextlib.contextmanager
def integer_visible_devices() -> Iterator[None]:
    """``CUDA_VISIBLE_DEVICES`` as NVML indices for as long as the block runs.

    Raises:
        ZeusUnavailable: a UUID entry that NVML does not know (a MIG slice, say).
    """
    visible = nvml.visible_devices()
    if not visible or not any(e.startswith(("GPU-", "MIG-")) for e in visible):
        yield
        return
    indices = _nvml_indices(visible)
    if indices is None:
        raise ZeusUnavailable(
            f"no Zeus: CUDA_VISIBLE_DEVICES={','.join(visible)} names devices that NVML cannot "
            "map to indices (Zeus reads the variable as integers)"
        )
    original = os.environ["CUDA_VISIBLE_DEVICES"]
    os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(indices)
    try:
        yield
    finally:
        os.environ["CUDA_VISIBLE_DEVICES"] = original


class ZeusMeter:
    """Measures a window with ``ZeusMonitor`` on the engine's CUDA devices."""

    def __init__(self, cuda_indices: list[int], labels: list[str] | None = None) -> None:
        monitor_cls = _monitor_class()
        try:
            # cpu_indices=[]: CPU energy is RAPL's job here, and RAPL needs root in Zeus.
            with integer_visible_devices():
                self.monitor = monitor_cls(gpu_indices=cuda_indices, cpu_indices=[])
        except ZeusUnavailable:
            raise
        except Exception as exc:  # Zeus raises its own init errors; all mean "unavailable"
            raise ZeusUnavailable(f"no Zeus: {type(exc).__name__}: {exc}") from None
        self.info = MeterInfo(source="zeus", method="zeus-monitor", resolution_j=0.001)
        # Label devices like the NVML meter (UUIDs) so idle baselines match across sources.
        self.labels = dict(
            zip(cuda_indices, labels or [f"cuda:{i}" for i in cuda_indices], strict=True)
        )
        self._key = ""
        self._t0 = 0.0

    def start(self) -> None:
        """Begin a uniquely named window."""
        self._key = f"llem-{uuidlib.uuid4().hex}"
        self._t0 = time.perf_counter()
        self.monitor.begin_window(self._key)

    def stop(self) -> EnergyReading:
        """End the window; no GPU energy in it means no reading."""
        result = self.monitor.end_window(self._key)
        energy = {
            self.labels.get(i, f"cuda:{i}"): float(j) for i, j in (result.gpu_energy or {}).items()
        }
        duration = float(getattr(result, "time", time.perf_counter() - self._t0))
        if not energy:
            return EnergyReading(
                total_j=None, duration_s=duration, reason="Zeus returned a time-only measurement"
            )
        return EnergyReading(total_j=sum(energy.values()), per_device_j=energy, duration_s=duration)

    def close(self) -> None:
        """Nothing to release (Zeus owns its NVML session)."""
