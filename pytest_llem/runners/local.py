"""Run items in this process, reusing the loaded model across compatible items."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from pytest_llem.devices import GpuRef
from pytest_llem.energy import nvml
from pytest_llem.energy.disturbance import WindowWatch
from pytest_llem.energy.gpu_state import GpuWatch
from pytest_llem.energy.host_load import HostReader
from pytest_llem.energy.sampler import GpuSampler
from pytest_llem.energy.select import select_meter
from pytest_llem.engines import loading
from pytest_llem.engines.cache import ModelCache
from pytest_llem.engines.servers import ServerCache
from pytest_llem.measure import protocol
from pytest_llem.measure.idle_power import IdleReading
from pytest_llem.measure.phases import Progress
from pytest_llem.measure.protocol import Instruments
from pytest_llem.measure.thermal import ThermalReader
from pytest_llem.results.records import Measurement, RunnerInfo, ValidityWarning
from pytest_llem.runners import serve_item
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


def execute(
    spec: RunSpec, cache: ModelCache, progress: Progress, servers: ServerCache | None = None
) -> Measurement:
    """Load (or reuse) the model, measure one item, and return the measurement.

    Shared by the local runner and the container entrypoint, so an item measures the same
    way wherever it runs. A serving item (``serve:``) loads a server instead of a model: the
    runner's ``servers``, or one for this item alone (stopped when it ends).
    """
    config = spec.config
    if config.serve is not None:
        cache.clear()  # one model or one server holds the devices, never both
        if servers is not None:
            return serve_item.execute(spec, servers, progress)
        own = ServerCache()
        try:
            return serve_item.execute(spec, own, progress)
        finally:
            own.clear()
    if servers is not None:
        servers.clear()
    base_dir = Path(spec.base_dir) if spec.base_dir else None
    progress("load", config.model)
    loaded = cache.get(config, base_dir)
    gpus = loaded.engine.devices()
    meter = select_meter(config, spec.energy_backend, gpus)
    idle = spec.idle
    try:
        with gpu_instruments(spec, gpus) as (sampler, thermal, facts, gpu_watch):
            inst = Instruments(
                meter=meter,
                sampler=sampler,
                thermal=thermal,
                idle=IdleReading(idle.per_device_w, idle.measured_at, idle.method, idle.reason),
                progress=progress,
                device_warnings=facts,
                # The host's share of other processes is checked for every item, CPU or GPU.
                watch=WindowWatch(config.validity, HostReader(), gpu_watch),
            )
            measurement = protocol.run(loaded.engine, config, inst)
    finally:
        meter.close()
    return measurement.model_copy(
        update={
            "model_load_s": loaded.load_s,
            "model_cached": loaded.cached,
            # Library versions, and what the engine chose for this load (e.g. vLLM's CPU
            # KV-cache reservation): engines that choose something expose it as ``facts``;
            # the protocol's own: each window's host and GPU figures.
            "environment": {
                **loading.environment(config),
                **getattr(loaded.engine, "facts", {}),
                **measurement.environment,
            },
        }
    )


class LocalRunner:
    """In-process runner: one per worker, holding that worker's model cache."""

    def __init__(self, source: str = "default") -> None:
        self.info = RunnerInfo(type="local", source=source)
        self.cache = ModelCache()
        self.servers = ServerCache()  # serving items' server, kept warm like the model

    def prepare(self, spec: RunSpec) -> None:
        """Import what loading the item's model needs (before a per-item timer starts)."""
        if spec.config.serve is not None:
            return  # the server is another process: nothing to import here
        base_dir = Path(spec.base_dir) if spec.base_dir else None
        loading.preload(spec.config, base_dir)

    def run(self, spec: RunSpec, progress: Progress) -> Measurement:
        """Measure one item in this process.

        An item that fails or is interrupted (a timeout mid-generate) may leave its engine in
        a state nobody can vouch for: it is evicted, and the next item loads afresh.
        """
        try:
            return execute(spec, self.cache, progress, self.servers)
        except BaseException:
            self.cache.clear()
            self.servers.clear()  # a server that failed an item is not reused
            raise

    def close(self) -> None:
        """Free the cached model; stop and reap the server."""
        self.cache.clear()
        self.servers.clear()
