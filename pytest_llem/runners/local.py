"""Run items in this process, reusing the loaded model across compatible items."""

from __future__ import annotations

from pathlib import Path

from pytest_llem.energy.select import select_meter
from pytest_llem.engines import registry
from pytest_llem.engines.cache import ModelCache
from pytest_llem.measure import protocol
from pytest_llem.measure.baseline import Baseline
from pytest_llem.measure.protocol import Instruments, Progress
from pytest_llem.results import Measurement, RunnerInfo
from pytest_llem.runners.base import RunSpec


def execute(spec: RunSpec, cache: ModelCache, progress: Progress) -> Measurement:
    """Load (or reuse) the model, measure one item, and return the measurement.

    Shared by the local runner and the container entrypoint, so an item measures the same
    way wherever it runs.
    """
    config = spec.config
    base_dir = Path(spec.base_dir) if spec.base_dir else None
    progress("load", config.model)
    loaded = cache.get(config, base_dir)
    meter = select_meter(config, spec.energy_backend)
    try:
        inst = Instruments(
            meter=meter,
            baseline=Baseline(spec.baseline.power_w, spec.baseline.age_s, spec.baseline.stale),
            progress=progress,
        )
        measurement = protocol.run(loaded.engine, config, inst)
    finally:
        meter.close()
    return measurement.model_copy(
        update={
            "model_load_s": loaded.load_s,
            "model_cached": loaded.cached,
            "environment": registry.environment(config.backend),
        }
    )


class LocalRunner:
    """In-process runner: one per worker, holding that worker's model cache."""

    def __init__(self, source: str = "default") -> None:
        self.info = RunnerInfo(type="local", source=source)
        self.cache = ModelCache()

    def run(self, spec: RunSpec, progress: Progress) -> Measurement:
        """Measure one item in this process."""
        return execute(spec, self.cache, progress)

    def close(self) -> None:
        """Free the cached model."""
        self.cache.clear()
