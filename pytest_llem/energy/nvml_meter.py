"""The NVML energy meter: total-energy counter deltas on every GPU the engine uses, or power
polling integrated over the window on GPUs without the counter (pre-Volta).

The clock is injected so that tests drive windows of exact length without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

from pytest_llem.energy.meter import EnergyReading, MeterInfo, trapezoid
from pytest_llem.energy.nvml import release, supports_counter

Clock = Callable[[], float]


class _PowerPoller:
    """Background power polling for GPUs without the energy counter."""

    def __init__(
        self,
        pynvml: ModuleType,
        handles: list[tuple[str, Any]],
        interval_s: float,
        clock: Clock = time.perf_counter,
    ) -> None:
        self.pynvml = pynvml
        self.handles = handles
        self.interval_s = interval_s
        self.clock = clock
        self.samples: dict[str, list[tuple[float, float]]] = {u: [] for u, _ in handles}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="llem-power-poller", daemon=True)

    def _sample(self) -> None:
        now = self.clock()
        for uuid, handle in self.handles:
            watts = self.pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
            self.samples[uuid].append((now, watts))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> None:
        self._sample()  # an edge sample at the window start
        self._thread.start()

    def halt(self) -> None:
        """Stop and join the polling thread (an abandoned window)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()  # and one at the end
        return {
            uuid: trapezoid([t for t, _ in s], [w for _, w in s])
            for uuid, s in self.samples.items()
        }


class NvmlMeter:
    """Energy of a window on every GPU the engine uses: counter deltas, or polled power."""

    def __init__(
        self,
        pynvml: ModuleType,
        handles: list[tuple[str, Any]],
        interval_s: float,
        clock: Clock = time.perf_counter,
    ) -> None:
        self.pynvml = pynvml
        self.handles = handles
        self.interval_s = interval_s
        self.clock = clock
        self.counter = all(supports_counter(pynvml, h) for _, h in handles)
        if self.counter:
            self.info = MeterInfo(source="nvml", method="counter", resolution_j=0.001)
        else:
            self.info = MeterInfo(
                source="nvml", method=f"polling@{interval_s * 1000:g}ms", resolution_j=None
            )
        self._start: dict[str, int] = {}
        self._poller: _PowerPoller | None = None
        self._t0 = 0.0
        self._t_open = 0.0

    def start(self) -> None:
        """Read every counter (or start polling) at the window's opening edge."""
        self._t0 = self.clock()
        if self.counter:
            self._t_open = self.clock()  # the edge: right before the opening counter reads
            self._start = {
                u: self.pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for u, h in self.handles
            }
        else:
            self._t_open = self._t0
            self._poller = _PowerPoller(self.pynvml, self.handles, self.interval_s, self.clock)
            self._poller.start()

    def stop(self) -> EnergyReading:
        """Read the counters again (or integrate the polled power) and return joules per GPU."""
        if self.counter:
            per_device = {
                u: (self.pynvml.nvmlDeviceGetTotalEnergyConsumption(h) - self._start[u]) / 1000.0
                for u, h in self.handles
            }
        else:
            assert self._poller is not None
            per_device = self._poller.stop()
        t_close = self.clock()  # right after the closing reads
        return EnergyReading(
            total_j=sum(per_device.values()),
            per_device_j=per_device,
            duration_s=t_close - self._t0,
            t_start_s=self._t_open,
            t_end_s=t_close,
        )

    def close(self) -> None:
        """Stop polling (a window abandoned mid-way leaves the poller running), then release
        NVML: no thread of ours reads it after that."""
        if self._poller is not None:
            self._poller.halt()
            self._poller = None
        release(self.pynvml)
