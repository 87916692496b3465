"""The GPU instruments of an item where it runs: the power/thermal sampler, the thermal reader
between warmup batches, and the GPU half of the disturbance checks (shared by offline and
serving items)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from pytest_llem.devices import GpuRef
from pytest_llem.energy import nvml
from pytest_llem.energy.gpu_state import GpuWatch
from pytest_llem.energy.sampler import GpuSampler
from pytest_llem.measure.thermal import ThermalReader
from pytest_llem.results.records import ValidityWarning
from pytest_llem.runners.run_spec import RunSpec

# The sampler, the thermal reader, device warnings, and the GPU half of the window checks.
Instruments3 = tuple[
    GpuSampler | None, ThermalReader | None, list[ValidityWarning], GpuWatch | None
]
_NONE: Instruments3 = (None, None, [], None)


def _open_instruments(pynvml: ModuleType, spec: RunSpec, gpus: list[GpuRef]) -> Instruments3:
    handles = nvml.resolve_handles(pynvml, gpus)
    interval = spec.config.energy.sample_interval_s
    series = Path(spec.timeseries_file) if spec.timeseries_file else None
    sampler = GpuSampler(pynvml, handles, interval, series)

    def read() -> list[tuple[str, float | None, float | None]]:
        return [(s.device, s.temperature_c, s.power_w) for s in sampler.sample_once()]

    # Persistence mode and other processes are checked per window (energy/disturbance.py).
    watch = GpuWatch(pynvml, handles, sampler.taken)
    # Read between warmup batches: often enough for a steady run of thermal.min_steady_s,
    # rarely enough that NVML calls stay negligible beside batches of a few milliseconds.
    return sampler, ThermalReader(read, interval_s=max(interval, 0.25)), [], watch


@contextlib.contextmanager
def gpu_instruments(spec: RunSpec, gpus: list[GpuRef]) -> Iterator[Instruments3]:
    """Sampler, thermal reader and device warnings for the engine's GPUs (none without NVML).

    Opening them may fail (no NVML, an unmatched device): the item then runs without them. A
    failure in the body is the body's: it propagates unchanged, NVML released.
    """
    if spec.config.device != "cuda" or not gpus:
        yield _NONE
        return
    try:
        pynvml = nvml.load()
    except nvml.NvmlUnavailable:
        yield _NONE
        return
    try:
        try:
            opened = _open_instruments(pynvml, spec, gpus)
        except nvml.NvmlUnavailable:
            opened = _NONE
        yield opened
    finally:
        nvml.release(pynvml)
