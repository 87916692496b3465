"""The Runner interface and RunSpec, the versioned message a runner receives."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, SerializeAsAny, model_validator

from pytest_llem.engines.builtin import BUILTIN
from pytest_llem.measure.phases import Progress
from pytest_llem.results.records import Measurement, RunnerInfo
from pytest_llem.study.backends import spec_from_record
from pytest_llem.study.experiment import ExperimentConfig, experiment_model

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
    # As its own (registry's) model: a plugin backend's section travels too.
    config: SerializeAsAny[ExperimentConfig]
    # A plugin backend's import paths, so the container side can rebuild its config model.
    backend_spec: dict[str, Any] | None = None
    base_dir: str | None = None
    energy_backend: str | None = None
    idle: IdleSpec = IdleSpec()
    timeseries_file: str | None = None
    server_log_dir: str | None = None  # serving items: where their servers' logs are kept

    @model_validator(mode="before")
    @classmethod
    def _config_model(cls, data: Any) -> Any:
        # The config is read with the registry it was made for: the built-in backends, plus
        # a plugin's backend when the spec carries one.
        if isinstance(data, dict) and isinstance(data.get("config"), dict):
            record = data.get("backend_spec")
            registry = BUILTIN.with_specs([spec_from_record(record)]) if record else BUILTIN
            return {**data, "config": experiment_model(registry).model_validate(data["config"])}
        return data


class Runner(Protocol):
    """Executes a RunSpec somewhere and returns what was measured."""

    info: RunnerInfo

    def run(self, spec: RunSpec, progress: Progress) -> Measurement:
        """Run one item to completion (raises LlemError subclasses on failure)."""

    def close(self) -> None:
        """Release what the runner holds (models, containers)."""
