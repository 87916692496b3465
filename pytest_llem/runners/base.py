"""The Runner interface and RunSpec, the versioned message a runner receives."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

from pytest_llem.progress import Progress
from pytest_llem.results import Measurement, RunnerInfo
from pytest_llem.study.model import ExperimentConfig

RUNSPEC_VERSION = 1


class IdleSpec(BaseModel):
    """The session's idle baseline (per device label), passed to wherever the item runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_device_w: dict[str, float] = {}
    measured_at: float = 0.0
    method: str = ""
    reason: str | None = None


class RunSpec(BaseModel):
    """What to run: the config plus the session's decisions about how to measure it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = RUNSPEC_VERSION
    nodeid: str
    point_id: str
    config_hash: str
    config: ExperimentConfig
    base_dir: str | None = None
    energy_backend: str | None = None
    idle: IdleSpec = IdleSpec()
    timeseries_file: str | None = None


class Runner(Protocol):
    """Executes a RunSpec somewhere and returns what was measured."""

    info: RunnerInfo

    def run(self, spec: RunSpec, progress: Progress) -> Measurement:
        """Run one item to completion (raises LlemError subclasses on failure)."""

    def close(self) -> None:
        """Release what the runner holds (models, containers)."""
