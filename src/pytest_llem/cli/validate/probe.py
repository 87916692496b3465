"""The independent reader: a separate process that polls the NVML energy counter and instant
power of every GPU (default every 10 ms) while the plugin measures, and writes JSONL records.

It shares nothing with the plugin but the driver: its own NVML session, its own clock reads
(``time.perf_counter``, CLOCK_MONOTONIC on Linux, one clock for every process), so its
integration is an independent check of the plugin's counter readings over the same window.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from pytest_llem.energy import nvml


class ProbeRecord(BaseModel):
    """One reading of one GPU by the independent process."""

    t: float
    device: str
    energy_mj: int | None = None
    power_w: float | None = None
    sm_clock_mhz: float | None = None
    clock_reasons: int | None = None


def _read(pynvml: Any, uuid: str, handle: Any, now: float) -> ProbeRecord:
    record = ProbeRecord(t=now, device=uuid)
    with contextlib.suppress(pynvml.NVMLError):
        record.energy_mj = int(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    with contextlib.suppress(pynvml.NVMLError):
        record.power_w = pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
    with contextlib.suppress(pynvml.NVMLError, AttributeError):
        record.sm_clock_mhz = float(pynvml.nvmlDeviceGetClockInfo(handle, pynvml.NVML_CLOCK_SM))
    with contextlib.suppress(pynvml.NVMLError, AttributeError):
        record.clock_reasons = int(pynvml.nvmlDeviceGetCurrentClocksEventReasons(handle))
    return record


def poll(out: Path, interval_s: float, stop: Any, ready: Any) -> None:
    """Poll every GPU until ``stop`` is set (the child process's body)."""
    pynvml = nvml.load()
    try:
        handles = nvml.all_handles(pynvml)
        with out.open("w", encoding="utf-8") as handle:
            ready.set()
            next_t = time.perf_counter()
            while not stop.is_set():
                now = time.perf_counter()
                for uuid, h in handles:
                    handle.write(_read(pynvml, uuid, h, now).model_dump_json() + "\n")
                next_t += interval_s
                stop.wait(max(0.0, next_t - time.perf_counter()))
            now = time.perf_counter()
            for uuid, h in handles:
                handle.write(_read(pynvml, uuid, h, now).model_dump_json() + "\n")
    finally:
        ready.set()
        nvml.release(pynvml)


class IndependentProbe:
    """Runs ``poll`` in a child process (forked, so it needs no pickling of the NVML module)."""

    def __init__(self, out: Path, interval_s: float = 0.01) -> None:
        self.out = out
        self.interval_s = interval_s
        ctx = multiprocessing.get_context("fork")
        self._stop = ctx.Event()
        self._ready = ctx.Event()
        self._proc = ctx.Process(
            target=poll, args=(out, interval_s, self._stop, self._ready), daemon=True
        )

    def start(self) -> None:
        """Start polling; returns once the child has opened NVML and its output file."""
        self._proc.start()
        self._ready.wait(timeout=60)

    def stop(self) -> list[ProbeRecord]:
        """Stop the child and return its records."""
        self._stop.set()
        self._proc.join(timeout=60)
        if not self.out.exists():
            return []
        lines = self.out.read_text(encoding="utf-8").splitlines()
        return [ProbeRecord.model_validate(json.loads(line)) for line in lines if line.strip()]
