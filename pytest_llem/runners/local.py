"""Run items in this process, reusing the loaded model across compatible items."""

from __future__ import annotations

from pathlib import Path

from pytest_llem.energy.disturbance import WindowWatch
from pytest_llem.energy.host_load import HostReader
from pytest_llem.energy.select import select_meter
from pytest_llem.engines import loading
from pytest_llem.engines.cache import ModelCache
from pytest_llem.engines.servers import ServerCache
from pytest_llem.measure import protocol
from pytest_llem.measure.idle_power import IdleReading
from pytest_llem.measure.phases import Progress
from pytest_llem.measure.protocol import Instruments
from pytest_llem.results.records import Measurement, RunnerInfo
from pytest_llem.runners import serve_item
from pytest_llem.runners.instruments import gpu_instruments
from pytest_llem.runners.run_spec import RunSpec


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
