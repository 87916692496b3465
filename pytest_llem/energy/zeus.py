"""Zeus (``zeus`` package, optional extra) as an energy source.

An empty ``gpu_energy`` (a time-only measurement) is "no energy", never zero joules.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from typing import Any

from pytest_llem.energy.base import EnergyReading, MeterInfo

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


class ZeusMeter:
    """Measures a window with ``ZeusMonitor`` on the engine's CUDA devices."""

    def __init__(self, cuda_indices: list[int], labels: list[str] | None = None) -> None:
        monitor_cls = _monitor_class()
        try:
            # cpu_indices=[]: CPU energy is RAPL's job here, and RAPL needs root in Zeus.
            self.monitor = monitor_cls(gpu_indices=cuda_indices, cpu_indices=[])
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
