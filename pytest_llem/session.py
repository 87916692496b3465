"""LlemSession: the worker-side role object that runs items (one per pytest process)."""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import TYPE_CHECKING, Any

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
from pytest_llem.runners.local import LocalRunner
from pytest_llem.runners.pool import RunnerPool
from pytest_llem.study.model import ExperimentConfig

if TYPE_CHECKING:
    from pytest_llem.collect import ExperimentItem

SESSION_KEY = pytest.StashKey["LlemSession"]()
MEASUREMENT_KEY = pytest.StashKey[dict[str, Any]]()
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
        self.pool = RunnerPool(settings)
        self._preflight: dict[tuple[Any, ...], list[preflight.Check]] = {}
        self.items_run = 0
        self.notes: list[str] = []

    def resumed(self, item: ExperimentItem) -> dict[str, Any] | None:
        """The stored result of a passed item in the resumed run, when its config is unchanged."""
        stored = self.resume.get(item.nodeid)
        if stored is not None and stored.get("config_hash") == item.point.config_hash:
            return stored
        return None

    def runner_for(self, item: ExperimentItem) -> Runner:
        """The runner an item dispatches to (local, or a docker strategy)."""
        return self.pool.runner(item)

    def checks_for(self, item: ExperimentItem) -> list[preflight.Check]:
        """Pre-flight checks of an item: its runner, then its point (cached per config)."""
        try:
            runner_checks = self.pool.checks(item)
            local = self.pool.spec(item).mode == "local"
        except ValueError as exc:  # a malformed runner value (env, cli, study or ini)
            return [preflight.Check("runner", str(exc), "use local, docker or docker:<image>")]
        if any(c.kind == "docker" for c in runner_checks):
            return runner_checks  # it cannot run at all here: point checks would only add noise
        config = self._config(item)
        key = (config.model_dump_json(), str(item.path.parent), local)
        if key not in self._preflight:
            self._preflight[key] = preflight.check_point(
                config, item.path.parent, self.host, self.settings.energy, local=local
            )
            self._note_vllm_build(config, local)
        return runner_checks + self._preflight[key]

    def _note_vllm_build(self, config: ExperimentConfig, local: bool) -> None:
        """Say once which vLLM build pre-flight found (only vLLM's platform decides)."""
        build = self.host.__dict__.get("vllm_build")  # probed by check_point, if at all
        if config.backend == "vllm" and local and build is not None:
            text = build if isinstance(build, str) else build.describe()
            note = f"pre-flight: {text}"
            if note not in self.notes:
                self.notes.append(note)

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

    def _measure(self, item: ExperimentItem, runner: Runner) -> tuple[Measurement, dict[str, Any]]:
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
        extra = {
            "runner": (measurement.runner or runner.info).model_dump(mode="json"),
            "started_at": started,
            "finished_at": _now(),
        }
        return measurement, extra

    def run_item(
        self, item: ExperimentItem, checks: list[preflight.Check], runner: Runner
    ) -> Measurement:
        """Run one item, attach its measurement and JUnit properties, then apply the gate."""
        if checks:
            raise PreflightError(
                "pre-flight failed:\n" + "\n".join(c.render() for c in checks),
                "fix the problems above (all are listed)",
            )
        config = self._config(item)
        measurement, extra = self._measure(item, runner)
        hardware = self.host.hardware(config.device)
        verdict, stats = self.gate.judge(
            item.plan.gate,
            item.point.config_hash,
            hardware,
            measurement.metrics.model_dump(),
            final=item.cycle >= item.plan.execution.n_cycles,
        )
        item.stash[MEASUREMENT_KEY] = {
            **measurement.model_dump(mode="json"),
            **extra,
            "hardware": hardware,
            "worker": getattr(self.config, "workerinput", {}).get("workerid", "main"),
            "gate": verdict.model_dump(mode="json") if verdict is not None else None,
            "cycle_stats": stats,
        }
        junit.add_properties(item, measurement, verdict)
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

    @staticmethod
    def _config(item: ExperimentItem) -> ExperimentConfig:
        config = item.point.config
        assert config is not None, "invalid points are skipped before they run"
        return config

    def pytest_sessionfinish(self) -> None:
        """Release runners; on an xdist worker, send a summary to the controller."""
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["llem"] = {
                "worker": self.config.workerinput["workerid"],  # type: ignore[attr-defined]
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                "items_run": self.items_run,
                "model_loads": sum(
                    r.cache.loads for r in self.pool.runners() if isinstance(r, LocalRunner)
                ),
            }
        notes = self.close()  # includes the pool's advice (persistent, mixed runners)
        if workeroutput is not None:
            workeroutput["llem"]["notes"] = notes
        else:
            self.notes.extend(notes)

    def close(self) -> list[str]:
        """Release every runner (models, containers); return notes for the user."""
        return self.pool.close()
