"""Idle baseline power: what the devices draw doing nothing, subtracted from window energy.

Measured once per session per device set (not per item), persisted with its timestamp in the
results directory, and re-measured when older than ``baseline.max_age_s``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from pytest_llem.energy import nvml, rapl
from pytest_llem.energy.meter import EnergyMeter
from pytest_llem.energy.nvml_meter import NvmlMeter
from pytest_llem.results.records import write_json_atomic
from pytest_llem.study.experiment import ExperimentConfig


@dataclass(frozen=True)
class Baseline:
    """Idle power handed to the protocol (None when there is no baseline)."""

    power_w: float | None = None
    age_s: float | None = None
    stale: bool = False


@dataclass(frozen=True)
class IdleReading:
    """Idle power per device label (GPU UUID or RAPL zone), and when it was measured."""

    per_device_w: dict[str, float] = field(default_factory=dict)
    measured_at: float = 0.0
    method: str = ""
    reason: str | None = None

    def for_devices(self, labels: list[str], now: float, max_age_s: float) -> Baseline:
        """The summed idle power of ``labels``; None if any device has no baseline."""
        if not labels or any(label not in self.per_device_w for label in labels):
            return Baseline()
        age = max(0.0, now - self.measured_at)
        return Baseline(
            power_w=sum(self.per_device_w[label] for label in labels),
            age_s=age,
            stale=age > max_age_s,
        )


class _CacheEntry(BaseModel):
    per_device_w: dict[str, float]
    measured_at: float
    method: str
    duration_s: float


class _CacheFile(BaseModel):
    version: int = 1
    entries: dict[str, _CacheEntry] = {}


def measure_idle(
    meter: EnergyMeter, duration_s: float, sleep: Callable[[float], None] = time.sleep
) -> dict[str, float]:
    """Average power per device over an idle window of ``duration_s``."""
    meter.start()
    sleep(duration_s)
    reading = meter.stop()
    if reading.total_j is None or reading.duration_s <= 0:
        return {}
    return {label: j / reading.duration_s for label, j in reading.per_device_j.items()}


class IdleBaselines:
    """Session-wide provider: measures lazily, caches in memory and on disk."""

    def __init__(
        self,
        cache_file: Path,
        rapl_root: Path = rapl.DEFAULT_ROOT,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cache_file = cache_file
        self.rapl_root = rapl_root
        self.clock = clock
        self.sleep = sleep
        self._memory: dict[str, IdleReading] = {}
        self._by_device: dict[str, IdleReading] = {}
        self.measurements = 0

    def _open_meter(self, device: str, interval_s: float) -> tuple[str, EnergyMeter]:
        if device == "cpu":
            meter: EnergyMeter = rapl.RaplMeter(self.rapl_root)
            return "rapl", meter
        pynvml = nvml.load()
        try:
            handles = nvml.all_handles(pynvml)
            key = "nvml:" + ",".join(sorted(u for u, _ in handles))
            return key, NvmlMeter(pynvml, handles, interval_s)
        except BaseException:
            nvml.release(pynvml)
            raise

    def get(self, config: ExperimentConfig) -> IdleReading:
        """The idle reading for the config's device kind, measuring it if needed."""
        spec = config.baseline
        if not spec.enabled or config.energy.backend == "null":
            return IdleReading(reason="baseline disabled")
        # Fast path for every item after the first: no device is opened to find a fresh reading.
        known = self._by_device.get(config.device)
        if known is not None and (
            known.reason is not None or self.clock() - known.measured_at <= spec.max_age_s
        ):
            return known
        try:
            key, meter = self._open_meter(config.device, config.energy.sample_interval_s)
        except (nvml.NvmlUnavailable, rapl.RaplUnavailable) as exc:
            self._by_device[config.device] = IdleReading(reason=str(exc))
            return self._by_device[config.device]
        try:
            now = self.clock()
            cached = self._memory.get(key) or self._from_disk(key)
            if cached is not None and now - cached.measured_at <= spec.max_age_s:
                self._memory[key] = self._by_device[config.device] = cached
                return cached
            per_device = measure_idle(meter, spec.duration_s, self.sleep)
            self.measurements += 1
            reading = IdleReading(per_device, self.clock(), meter.info.method or "")
            self._memory[key] = self._by_device[config.device] = reading
            self._to_disk(key, reading, spec.duration_s)
            return reading
        finally:
            meter.close()

    def _from_disk(self, key: str) -> IdleReading | None:
        try:
            data = _CacheFile.model_validate_json(self.cache_file.read_text())
        except (OSError, ValidationError, ValueError):
            return None  # absent or unreadable: measure again (and overwrite)
        entry = data.entries.get(key)
        if entry is None:
            return None
        return IdleReading(entry.per_device_w, entry.measured_at, entry.method)

    def _to_disk(self, key: str, reading: IdleReading, duration_s: float) -> None:
        try:
            data = _CacheFile.model_validate_json(self.cache_file.read_text())
        except (OSError, ValidationError, ValueError):
            data = _CacheFile()
        data.entries[key] = _CacheEntry(
            per_device_w=reading.per_device_w,
            measured_at=reading.measured_at,
            method=reading.method,
            duration_s=duration_s,
        )
        payload = json.loads(data.model_dump_json())
        payload["written_at"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        write_json_atomic(self.cache_file, payload)
