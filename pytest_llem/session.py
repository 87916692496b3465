"""LlemSession: the worker-side role object that runs items (one per pytest process)."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_llem import preflight
from pytest_llem.errors import GateFailure, LlemError, PreflightError
from pytest_llem.gate.apply import Gate
from pytest_llem.gate.verdict import Verdict
from pytest_llem.gate.verdict import table as gate_table
from pytest_llem.measure.baseline import IdleBaselines
from pytest_llem.options import Settings
from pytest_llem.report import junit
from pytest_llem.report.progress import ProgressLine
from pytest_llem.results import Measurement
from pytest_llem.runners.base import IdleSpec, Runner, RunSpec
from pytest_llem.runners.pool import RunnerPool, RunnerSettings
from pytest_llem.study.model import ExperimentConfig
from pytest_llem.study.plan import Point, StudyPlan

SESSION_KEY = pytest.StashKey["LlemSession"]()


@dataclass(frozen=True)
class ItemRef:
    """What the session needs of an item: who it is and which plan, point and cycle it runs.

    Collection builds it; the session never sees the pytest item, so nothing below collection
    depends on pytest's node classes.
    """

    nodeid: str
    plan: StudyPlan
    point: Point
    cycle: int
    study_dir: Path

    @property
    def config(self) -> ExperimentConfig:
        """The point's config (invalid points are skipped before they run)."""
        assert self.point.config is not None, "invalid points are skipped before they run"
        return self.point.config


@dataclass(frozen=True)
class ItemOutcome:
    """What a run leaves on its item: the report's measurement and the JUnit properties."""

    measurement: dict[str, Any]
    properties: list[tuple[str, object]]


_UNSAFE_FILE = re.compile(r"[^A-Za-z0-9_.-]+")


class ValidityFailure(LlemError):  # noqa: N818 - a verdict, like GateFailure
    """A validity warning the study asked to treat as a failure (``validity.fail_on``)."""


def _gate_fix(verdict: Verdict) -> str:
    if not any(c.status == "fail" for c in verdict.comparisons):
        return (
            "save a baseline for this config on this hardware (--llem-save-baseline), "
            "or drop --llem-require-baseline"
        )
    return "investigate the regression; if it is intended, save a new baseline"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class LlemSession:
    """Holds this process's runners (and their model caches), host facts and idle baselines."""

    def __init__(
        self,
        config: pytest.Config,
        settings: Settings,
        gate: Gate,
        resume: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.gate = gate
        self.resume = resume or {}
        self.host = preflight.Host()
        self.baselines = IdleBaselines(settings.results_dir / "idle_baseline.json")
        self.pool = RunnerPool(
            RunnerSettings(settings.runner_cli, settings.runner_ini, settings.docker)
        )
        self._preflight: dict[tuple[Any, ...], list[preflight.Check]] = {}
        self.items_run = 0
        self.model_loads = 0  # loads behind the measured items, wherever they ran
        self.model_load_s = 0.0

    def resumed(self, item: ItemRef) -> dict[str, Any] | None:
        """The stored result of a passed item in the resumed run, when its config is unchanged."""
        stored = self.resume.get(item.nodeid)
        if stored is not None and stored.get("config_hash") == item.point.config_hash:
            return stored
        return None

    def runner_for(self, item: ItemRef) -> Runner:
        """The runner an item dispatches to (local, or a docker strategy)."""
        return self.pool.runner(item.plan, item.point)

    def checks_for(self, item: ItemRef) -> list[preflight.Check]:
        """Pre-flight checks of an item: its runner, then its point (cached per config)."""
        try:
            runner_checks = self.pool.checks(item.plan, item.point)
            local = self.pool.spec(item.plan, item.point.backend).mode == "local"
        except ValueError as exc:  # a malformed runner value (env, cli, study or ini)
            return [preflight.Check("runner", str(exc), "use local, docker or docker:<image>")]
        if any(c.kind == "docker" for c in runner_checks):
            return runner_checks  # it cannot run at all here: point checks would only add noise
        config = item.config
        key = (config.model_dump_json(), str(item.study_dir), local)
        if key not in self._preflight:
            self._preflight[key] = preflight.check_point(
                config, item.study_dir, self.host, self.settings.energy, local=local
            )
        return runner_checks + self._preflight[key]

    def spec_for(self, item: ItemRef) -> RunSpec:
        """The RunSpec of an item, with the session's idle baseline for its device kind."""
        config = item.config
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
            base_dir=str(item.study_dir),
            energy_backend=self.settings.energy,
            idle=IdleSpec(
                per_device_w=idle.per_device_w,
                measured_at=idle.measured_at,
                method=idle.method,
                reason=idle.reason,
            ),
            timeseries_file=series,
        )

    def _measure(self, item: ItemRef, runner: Runner) -> tuple[Measurement, dict[str, Any]]:
        stored = self.resumed(item)
        if stored is not None:
            fields = {k: v for k, v in stored.items() if k in Measurement.model_fields}
            extra = {k: stored.get(k) for k in ("runner", "started_at", "finished_at")}
            return Measurement.model_validate(fields), {**extra, "resumed": True}
        spec = self.spec_for(item)
        started = _now()
        line = ProgressLine(self.config)
        try:
            measurement = runner.run(spec, line.update)
        finally:
            line.clear()
        self.items_run += 1
        if measurement.model_load_s is not None and not measurement.model_cached:
            self.model_loads += 1
            self.model_load_s += measurement.model_load_s
        extra = {
            "runner": (measurement.runner or runner.info).model_dump(mode="json"),
            "started_at": started,
            "finished_at": _now(),
        }
        return measurement, extra

    def run_item(
        self,
        item: ItemRef,
        checks: list[preflight.Check],
        runner: Runner,
        record: Callable[[ItemOutcome], None],
    ) -> Measurement:
        """Run one item, ``record`` its measurement and JUnit properties, then apply the gate.

        ``record`` is called before a gate or validity failure is raised, so a failed item
        still carries what it measured.
        """
        if checks:
            raise PreflightError(
                "pre-flight failed:\n" + "\n".join(c.render() for c in checks),
                "fix the problems above (all are listed)",
            )
        config = item.config
        measurement, extra = self._measure(item, runner)
        hardware = self.host.hardware(config.device)
        verdict, stats = self.gate.judge(
            item.plan.gate,
            item.point.config_hash,
            hardware,
            measurement.metrics.model_dump(),
            final=item.cycle >= item.plan.execution.n_cycles,
        )
        record(
            ItemOutcome(
                measurement={
                    **measurement.model_dump(mode="json"),
                    **extra,
                    "hardware": hardware,
                    "worker": getattr(self.config, "workerinput", {}).get("workerid", "main"),
                    "gate": verdict.model_dump(mode="json") if verdict is not None else None,
                    "cycle_stats": stats,
                },
                properties=junit.properties(item.point, item.cycle, measurement, verdict),
            )
        )
        if verdict is not None and verdict.failed:
            raise GateFailure(
                f"regression gate failed for {item.point.id} (cycle {item.cycle}):\n"
                + gate_table(verdict),
                _gate_fix(verdict),
            )
        failing = [w for w in measurement.warnings if w.code in config.validity.fail_on]
        if failing:
            raise ValidityFailure(
                "validity warnings marked fail_on:\n"
                + "\n".join(f"  {w.code}: {w.message}" for w in failing),
                "fix the measurement conditions, or remove the codes from validity.fail_on",
            )
        return measurement

    @pytest.hookimpl(tryfirst=True)  # before the reporter writes the report
    def pytest_sessionfinish(self) -> None:
        """Release runners and send this process's summary to the reporter (one channel)."""
        workerinput = getattr(self.config, "workerinput", None)
        summary: dict[str, Any] = {
            "worker": workerinput["workerid"] if workerinput else "main",
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "items_run": self.items_run,
            "model_loads": self.model_loads,
            "model_load_s": round(self.model_load_s, 3),
        }
        summary["notes"] = self.close()  # includes the pool's advice (persistent, mixed runners)
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["llem"] = summary  # xdist carries it to the controller
        else:
            self.config.hook.pytest_llem_worker_summary(config=self.config, summary=summary)

    def close(self) -> list[str]:
        """Release every runner (models, containers); return notes for the user."""
        return self.pool.close()
