"""LlemSession: the worker-side role object that runs items (one per pytest process)."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llem import preflight
from pytest_llem.errors import LlemError, PreflightError
from pytest_llem.measure.baseline import IdleBaselines
from pytest_llem.options import Settings
from pytest_llem.report import junit
from pytest_llem.report.progress import ProgressLine
from pytest_llem.results import Measurement
from pytest_llem.runners.base import IdleSpec, Runner, RunSpec
from pytest_llem.runners.local import LocalRunner
from pytest_llem.study.model import ExperimentConfig

if TYPE_CHECKING:
    from pytest_llem.collect import ExperimentItem

SESSION_KEY = pytest.StashKey["LlemSession"]()
MEASUREMENT_KEY = pytest.StashKey[dict[str, Any]]()
_UNSAFE_FILE = re.compile(r"[^A-Za-z0-9_.-]+")


class ValidityFailure(LlemError):  # noqa: N818 - a verdict, like GateFailure
    """A validity warning the study asked to treat as a failure (``validity.fail_on``)."""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class LlemSession:
    """Holds this process's runners (and their model caches), host facts and idle baselines."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.host = preflight.Host()
        self.baselines = IdleBaselines(settings.results_dir / "idle_baseline.json")
        self._runners: dict[str, Runner] = {}
        self._preflight: dict[tuple[Any, ...], list[preflight.Check]] = {}

    def runner_for(self, backend: str) -> Runner:
        """The runner for a backend, created on first use."""
        runner = self._runners.get(backend)
        if runner is None:
            runner = LocalRunner()
            self._runners[backend] = runner
        return runner

    def checks_for(self, item: ExperimentItem) -> list[preflight.Check]:
        """Pre-flight checks of an item's point, cached per distinct (config, place)."""
        config = self._config(item)
        key = (config.model_dump_json(), str(item.path.parent))
        if key not in self._preflight:
            self._preflight[key] = preflight.check_point(
                config, item.path.parent, self.host, self.settings.energy, local=True
            )
        return self._preflight[key]

    def spec_for(self, item: ExperimentItem) -> RunSpec:
        """The RunSpec of an item, with the session's idle baseline for its device kind."""
        config = self._config(item)
        idle = self.baselines.get(config)
        series = None
        if self.settings.timeseries or config.energy.save_timeseries:
            name = _UNSAFE_FILE.sub("_", item.nodeid) + ".jsonl"
            series = str(self.settings.results_dir / "timeseries" / name)
        return RunSpec(
            nodeid=item.nodeid,
            point_id=item.point.id,
            config_hash=item.point.config_hash,
            config=config,
            base_dir=str(item.path.parent),
            energy_backend=self.settings.energy,
            idle=IdleSpec(
                per_device_w=idle.per_device_w,
                measured_at=idle.measured_at,
                method=idle.method,
                reason=idle.reason,
            ),
            timeseries_file=series,
        )

    def run_item(self, item: ExperimentItem, checks: list[preflight.Check]) -> Measurement:
        """Run one item and attach its measurement and JUnit properties to it."""
        if checks:
            raise PreflightError(
                "pre-flight failed:\n" + "\n".join(c.render() for c in checks),
                "fix the problems above (all are listed)",
            )
        spec = self.spec_for(item)
        runner = self.runner_for(spec.config.backend)
        started = _now()
        line = ProgressLine(self.config)
        try:
            measurement = runner.run(spec, line.update)
        finally:
            line.clear()
        item.stash[MEASUREMENT_KEY] = {
            **measurement.model_dump(mode="json"),
            "runner": runner.info.model_dump(mode="json"),
            "started_at": started,
            "finished_at": _now(),
        }
        junit.add_properties(item, measurement)
        failing = [w for w in measurement.warnings if w.code in spec.config.validity.fail_on]
        if failing:
            raise ValidityFailure(
                "validity warnings marked fail_on:\n"
                + "\n".join(f"  {w.code}: {w.message}" for w in failing),
                "fix the measurement conditions, or remove the codes from validity.fail_on",
            )
        return measurement

    @staticmethod
    def _config(item: ExperimentItem) -> ExperimentConfig:
        config = item.point.config
        assert config is not None, "invalid points are skipped before they run"
        return config

    def pytest_sessionfinish(self) -> None:
        """Release runners at the end of the session."""
        self.close()

    def close(self) -> None:
        """Release every runner (models, containers)."""
        runners, self._runners = self._runners, {}
        for runner in runners.values():
            runner.close()
