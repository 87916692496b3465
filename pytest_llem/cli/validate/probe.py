"""The independent reader: a separate process that polls the NVML energy counter and instant
power of every GPU (default every 10 ms) while the plugin measures, and writes JSONL records.

Instant power is ``NVML_FI_DEV_POWER_INSTANT`` (``nvmlDeviceGetFieldValues``) where the GPU
and driver have it: ``nvmlDeviceGetPowerUsage`` is a one-second average on Ampere (except
GA100) and newer, whose integration over a window lags it. Which one was read, and why, is
written beside the records (``<out>.sources.json``) and shown in the report.

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


def sources_file(out: Path) -> Path:
    """Where the probe records which power reading each GPU got."""
    return out.with_name(out.name + ".sources.json")


def _read(pynvml: Any, uuid: str, handle: Any, power: nvml.PowerReader) -> ProbeRecord:
    # Both readings as close together as possible, the timestamp between them.
    energy: int | None = None
    with contextlib.suppress(pynvml.NVMLError):
        energy = int(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle))
    now = time.perf_counter()
    record = ProbeRecord(t=now, device=uuid, energy_mj=energy)
    with contextlib.suppress(pynvml.NVMLError):
        record.power_w = power.watts()
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
        readers = {uuid: nvml.PowerReader(pynvml, h) for uuid, h in handles}
        sources = {uuid: reader.source for uuid, reader in readers.items()}
        sources_file(out).write_text(json.dumps(sources), encoding="utf-8")
        with out.open("w", encoding="utf-8") as handle:
            ready.set()
            next_t = time.perf_counter()
            while not stop.is_set():
                for uuid, h in handles:
                    handle.write(_read(pynvml, uuid, h, readers[uuid]).model_dump_json() + "\n")
                next_t += interval_s
                stop.wait(max(0.0, next_t - time.perf_counter()))
            for uuid, h in handles:
                handle.write(_read(pynvml, uuid, h, readers[uuid]).model_dump_json() + "\n")
    finally:
        ready.set()
        nvml.release(pynvml)


class IndependentProbe:
    """Runs ``poll`` in a child process (forked, so it needs no pickling of the NVML module)."""

    def __init__(self, out: Path, interval_s: float = 0.01) -> None:
        self.out = out
        self.interval_s = interval_s
        self.power_sources: dict[str, str] = {}
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
        sources = sources_file(self.out)
        if sources.exists():
            self.power_sources = json.loads(sources.read_text(encoding="utf-8"))
        if not self.out.exists():
            return []
        lines = self.out.read_text(encoding="utf-8").splitlines()
        return [ProbeRecord.model_validate(json.loads(line)) for line in lines if line.strip()]
