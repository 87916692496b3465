"""A background thread that samples GPU power, temperature, memory, utilisation and throttling.

It runs alongside the measured window (and its readings judge warmup steady); its
summary goes into the result, and optionally the full timeseries into a JSONL file.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from pytest_llem.results.records import SamplerSummary

# Clock-event reason bits, as nvidia-ml-py names them (nvmlClocksEventReason*; the same values
# as the older nvmlClocksThrottleReason*); tests/unit/energy/test_sampler.py checks them
# against the installed pynvml.
CLOCK_EVENT_BITS: dict[str, int] = {
    "gpu_idle": 0x1,  # nvmlClocksEventReasonGpuIdle
    "applications_clocks_setting": 0x2,  # ...ApplicationsClocksSetting (-ac, and -lgc locks)
    "sw_power_cap": 0x4,  # ...SwPowerCap
    "hw_slowdown": 0x8,  # ...HwSlowdown
    "sync_boost": 0x10,  # ...SyncBoost
    "sw_thermal": 0x20,  # ...SwThermalSlowdown
    "hw_thermal": 0x40,  # ...HwThermalSlowdown
    "hw_power_brake": 0x80,  # ...HwPowerBrakeSlowdown
    "display_clock_setting": 0x100,  # ...DisplayClockSetting
}
# The reasons that mean the GPU was slowed down. Idle, application clocks, sync boost and
# display clocks are not throttling.
THROTTLE_BITS: dict[str, int] = {
    name: CLOCK_EVENT_BITS[name]
    for name in ("sw_power_cap", "hw_slowdown", "sw_thermal", "hw_thermal", "hw_power_brake")
}


@dataclass
class Sample:
    """One reading of one GPU."""

    t: float
    device: str
    power_w: float | None = None
    temperature_c: float | None = None
    memory_used_mb: float | None = None
    utilization_pct: float | None = None
    sm_clock_mhz: float | None = None
    reasons: int | None = None  # the clock-event reason bits; None where unsupported
    throttle: list[str] = field(default_factory=list)


def read_sample(pynvml: ModuleType, uuid: str, handle: Any, t: float) -> Sample:
    """Read everything the GPU supports; unsupported queries are left None."""
    sample = Sample(t=t, device=uuid)
    readers: list[tuple[str, Any]] = [
        ("power_w", lambda: pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0),
        (
            "temperature_c",
            lambda: float(pynvml.nvmlDeviceGetTemperature(handle, pynvml.NVML_TEMPERATURE_GPU)),
        ),
        ("memory_used_mb", lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).used / 1e6),
        ("utilization_pct", lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
        (
            "sm_clock_mhz",
            lambda: float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM)),
        ),
    ]
    for name, read in readers:
        # Unsupported on this GPU (NotSupported), or the bindings lack it: leave None.
        with contextlib.suppress(pynvml.NVMLError, AttributeError):
            setattr(sample, name, read())
    with contextlib.suppress(pynvml.NVMLError, AttributeError):
        sample.reasons = clock_reasons(pynvml, handle)
        sample.throttle = [name for name, bit in THROTTLE_BITS.items() if sample.reasons & bit]
    return sample


def clock_reasons(pynvml: ModuleType, handle: Any) -> int:
    """The current clock-event reason bits.

    Renamed from "throttle reasons" to "clocks event reasons" in R535: older bindings lack the
    new function, and with older drivers the bindings have it but the library does not
    (FunctionNotFound); both fall back to the throttle-reasons call.

    Raises:
        pynvml.NVMLError: neither call works (NotSupported on this GPU).
    """
    getter = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if getter is not None:
        try:
            return int(getter(handle))
        except pynvml.NVMLError_FunctionNotFound:
            pass
    return int(pynvml.nvmlDeviceGetCurrentClocksThrottleReasons(handle))


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"min": min(values), "mean": sum(values) / len(values), "max": max(values)}


def summarise(samples: list[Sample], interval_s: float, timeseries: Path | None) -> SamplerSummary:
    """Min/mean/max of each quantity and seconds throttled per reason."""
    throttle: dict[str, float] = {}
    for sample in samples:
        for reason in sample.throttle:
            throttle[reason] = throttle.get(reason, 0.0) + interval_s

    def values(name: str) -> list[float]:
        return [v for s in samples if (v := getattr(s, name)) is not None]

    return SamplerSummary(
        samples=len(samples),
        interval_s=interval_s,
        power_w=_stats(values("power_w")),
        temperature_c=_stats(values("temperature_c")),
        memory_used_mb=_stats(values("memory_used_mb")),
        utilization_pct=_stats(values("utilization_pct")),
        throttle_s=throttle,
        timeseries_file=str(timeseries) if timeseries else None,
    )


class GpuSampler:
    """Samples every handle each ``interval_s`` on a daemon thread."""

    def __init__(
        self,
        pynvml: ModuleType,
        handles: list[tuple[str, Any]],
        interval_s: float,
        timeseries: Path | None = None,
    ) -> None:
        self.pynvml = pynvml
        self.handles = handles
        self.interval_s = interval_s
        self.timeseries = timeseries
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def taken(self) -> list[Sample]:
        """The samples of the current (or last) window so far."""
        with self._lock:
            return list(self.samples)

    def sample_once(self) -> list[Sample]:
        """Take one round of samples (also read between warmup batches to judge steadiness)."""
        now = time.perf_counter()
        taken = [read_sample(self.pynvml, u, h, now) for u, h in self.handles]
        with self._lock:
            self.samples.extend(taken)
        return taken

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample_once()

    def start(self) -> None:
        """Start sampling from now (previous samples are dropped)."""
        with self._lock:
            self.samples = []
        self._stop.clear()
        self.sample_once()
        self._thread = threading.Thread(target=self._loop, name="llem-sampler", daemon=True)
        self._thread.start()

    def halt(self) -> None:
        """Stop and join the sampling thread, keeping nothing (an abandoned window): called
        before NVML is released, so the thread never reads a shut-down library."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def stop(self) -> SamplerSummary:
        """Stop, write the timeseries if asked, and summarise."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample_once()
        with self._lock:
            samples = list(self.samples)
        if self.timeseries is not None:
            self.timeseries.parent.mkdir(parents=True, exist_ok=True)
            with self.timeseries.open("w", encoding="utf-8") as handle:
                for s in samples:
                    handle.write(json.dumps(s.__dict__) + "\n")
        return summarise(samples, self.interval_s, self.timeseries)
