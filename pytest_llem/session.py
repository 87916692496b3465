"""LlemSession: the worker-side role object that runs items (one per pytest process)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llem.options import Settings
from pytest_llem.report import junit
from pytest_llem.results import Measurement
from pytest_llem.runners.base import Runner, RunSpec
from pytest_llem.runners.local import LocalRunner

if TYPE_CHECKING:
    from pytest_llem.collect import ExperimentItem

SESSION_KEY = pytest.StashKey["LlemSession"]()
MEASUREMENT_KEY = pytest.StashKey[dict[str, Any]]()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class LlemSession:
    """Holds this process's runners (and their model caches) and executes items."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self._runners: dict[str, Runner] = {}

    def runner_for(self, backend: str) -> Runner:
        """The runner for a backend, created on first use."""
        runner = self._runners.get(backend)
        if runner is None:
            runner = LocalRunner()
            self._runners[backend] = runner
        return runner

    def spec_for(self, item: ExperimentItem) -> RunSpec:
        """The RunSpec of an item."""
        point = item.point
        assert point.config is not None, "invalid points are skipped before they run"
        return RunSpec(
            nodeid=item.nodeid,
            point_id=point.id,
            config_hash=point.config_hash,
            config=point.config,
            base_dir=str(item.path.parent),
        )

    def run_item(self, item: ExperimentItem) -> Measurement:
        """Run one item and attach its measurement and JUnit properties to it."""
        spec = self.spec_for(item)
        runner = self.runner_for(spec.config.backend)
        started = _now()
        measurement = runner.run(spec, lambda phase, detail: None)
        item.stash[MEASUREMENT_KEY] = {
            **measurement.model_dump(mode="json"),
            "runner": runner.info.model_dump(mode="json"),
            "started_at": started,
            "finished_at": _now(),
        }
        junit.add_properties(item, measurement)
        return measurement

    def pytest_sessionfinish(self) -> None:
        """Release runners at the end of the session."""
        self.close()

    def close(self) -> None:
        """Release every runner (models, containers)."""
        runners, self._runners = self._runners, {}
        for runner in runners.values():
            runner.close()
