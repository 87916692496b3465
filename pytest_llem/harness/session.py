"""LlemSession: the worker-side role object that runs items (one per pytest process)."""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.energy import disturbance
from pytest_llem.engines import loading
from pytest_llem.engines.builtin import BUILTIN
from pytest_llem.errors import GateFailure, LlemError, PreflightError
from pytest_llem.gate import explain, stability
from pytest_llem.gate.apply import Gate, arm_key, judge_pair, sample_key
from pytest_llem.gate.completeness import outcome_reason
from pytest_llem.gate.verdict import Verdict
from pytest_llem.gate.verdict import table as gate_table
from pytest_llem.harness import timeouts
from pytest_llem.harness.failure import Interruption
from pytest_llem.harness.planning import plan_study
from pytest_llem.harness.preflight import check_point, missing_hardware
from pytest_llem.measure import concurrency
from pytest_llem.measure.cooldown import Sleep, cool_down, gap_before
from pytest_llem.measure.estimate import read_history
from pytest_llem.measure.idle_power import IdleBaselines
from pytest_llem.preflight.check import Check
from pytest_llem.preflight.host import Host
from pytest_llem.report import junit
from pytest_llem.report.live_line import ProgressLine
from pytest_llem.results.records import Measurement, QualityRecord
from pytest_llem.runners.pool import RunnerPool, RunnerSettings
from pytest_llem.runners.run_spec import IdleSpec, Runner, RunSpec
from pytest_llem.settings.resolve import Settings
from pytest_llem.study.experiment import ExperimentConfig
from pytest_llem.study.plan import Point, StudyPlan
from pytest_llem.study.sections import AB_ARMS

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


class EnergyRequired(LlemError):  # noqa: N818 - a verdict, like GateFailure
    """``--llem-require-energy`` is set and the item measured no energy."""


class ValidityFailure(LlemError):  # noqa: N818 - a verdict, like GateFailure
    """A validity warning the study asked to treat as a failure (``validity.fail_on``)."""


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


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
        self.host = Host()
        self.baselines = IdleBaselines(settings.results_dir / "idle_baseline.json")
        self.pool = RunnerPool(
            RunnerSettings(
                settings.runner_cli,
                settings.runner_ini,
                settings.docker,
                settings.backends,
                settings.ab_cli,
            )
        )
        self._preflight: dict[tuple[Any, ...], list[Check]] = {}
        self.activity = concurrency.DeviceActivity(settings.results_dir / ".active")
        self.items_run = 0
        self.order: dict[str, Any] | None = None  # set after collection (see ordering.py)
        self.phase = ""  # the running item's phase (load, warmup, measure...)
        self.detail = ""  # and how far into it (the last progress detail)
        self.interrupted: Interruption | None = None  # where the last failed item was
        self._phase_started = 0.0
        self.longest_load_s: float | None = None  # of loads that finished or were cut
        self.load_cuts: list[str] = []  # items interrupted while loading their model
        self._prepared: set[tuple[str, str]] = set()
        self.notes: list[str] = []  # advice for the terminal, sent with the summary
        # What each study can detect and how long it should take (harness/planning.py).
        self.plan_lines: dict[str, list[str]] = {}
        self.planning: list[dict[str, Any]] = []
        self.sleep: Sleep = time.sleep  # tests inject a fake: no real waiting
        self._positions: dict[str, int] = {}  # study file -> items of it run here so far
        self.model_loads = 0  # loads behind the measured items, wherever they ran
        self.disturbed = stability.DisturbedCycles()  # cycles kept flagged (on_disturbed: warn)
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

    def checks_for(self, item: ItemRef) -> list[Check]:
        """Pre-flight checks of an item: its runner, then its point (cached per config)."""
        try:
            runner_checks = self.pool.checks(item.plan, item.point)
            local = self.pool.point_spec(item.plan, item.point)[0].mode == "local"
        except ValueError as exc:  # a malformed runner value (env, cli, study or ini)
            return [Check("runner", str(exc), "use local, docker or docker:<image>")]
        if any(c.kind == "docker" for c in runner_checks):
            return runner_checks  # it cannot run at all here: point checks would only add noise
        config = item.config
        key = (config.model_dump_json(), str(item.study_dir), local)
        if key not in self._preflight:
            self._preflight[key] = check_point(
                config, item.study_dir, self.host, self.settings.energy, local=local
            )
            self._note_build(config, local)
        return runner_checks + self._preflight[key]

    def _note_build(self, config: ExperimentConfig, local: bool) -> None:
        """Say once which build of the backend's library pre-flight found (where the backend
        has a ``build_note``: vLLM's platform decides what it can run)."""
        noter = config.backend_spec.build_noter() if local else None
        text = noter(self.host) if noter is not None else None
        if text:
            note = f"pre-flight: {text}"
            if note not in self.notes:
                self.notes.append(note)

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
            backend_spec=None if config.backend in BUILTIN else config.backend_spec.record(),
            base_dir=str(item.study_dir),
            energy_backend=self.settings.energy,
            idle=IdleSpec(
                per_device_w=idle.per_device_w,
                measured_at=idle.measured_at,
                method=idle.method,
                reason=idle.reason,
            ),
            timeseries_file=series,
            server_log_dir=str(self.settings.results_dir / "servers"),
        )

    def _measure(self, item: ItemRef, runner: Runner) -> tuple[Measurement, dict[str, Any]]:
        stored = self.resumed(item)
        if stored is not None:
            fields = {k: v for k, v in stored.items() if k in Measurement.model_fields}
            extra = {k: stored.get(k) for k in ("runner", "started_at", "finished_at")}
            return Measurement.model_validate(fields), {**extra, "resumed": True}
        spec = self.spec_for(item)
        line = ProgressLine(self.config)
        self.phase, self.detail, self.interrupted = "", "", None

        def progress(phase: str, detail: str) -> None:
            if phase != self.phase:
                self.phase, self._phase_started = phase, time.perf_counter()
            self.detail = detail
            line.update(phase, detail)

        # The cool-down is not measurement: it stays outside the concurrency span.
        waited = cool_down(self._gap(item), progress, self.sleep)
        keys = concurrency.device_keys(item.config)
        span = self.activity.begin(keys, item.nodeid)
        started, clock = _now(), time.perf_counter()
        try:
            measurement = runner.run(spec, progress)
        except BaseException as exc:
            self.interrupted = Interruption(self.phase, self.detail, time.perf_counter() - clock)
            # Only a timeout is a cut load: a load that raised is a load error (its own words).
            if self.phase == "load" and timeouts.is_timeout(exc):
                self._load_cut(item.nodeid)
            raise
        finally:
            line.clear()
            others = span.end()
        if not measurement.model_cached and measurement.model_load_s is not None:
            self.longest_load_s = max(self.longest_load_s or 0.0, measurement.model_load_s)
            self.model_loads += 1
            self.model_load_s += measurement.model_load_s
        if others:
            warnings = [*measurement.warnings, concurrency.warning(others, keys)]
            measurement = measurement.model_copy(update={"warnings": warnings})
        self.items_run += 1
        extra = {
            "runner": (measurement.runner or runner.info).model_dump(mode="json"),
            "started_at": started,
            "finished_at": _now(),
            "cooldown_s": waited,
        }
        return measurement, extra

    def _gap(self, item: ItemRef) -> float:
        """The cool-down before this item: its position among the study's items run here."""
        key = str(item.plan.path)
        position = self._positions.get(key, 0)
        self._positions[key] = position + 1
        execution = item.plan.execution
        return gap_before(
            position,
            len(item.plan.valid_points),
            execution.experiment_gap_s,
            execution.cycle_gap_s,
        )

    def _load_cut(self, nodeid: str) -> None:
        elapsed = time.perf_counter() - self._phase_started
        self.longest_load_s = max(self.longest_load_s or 0.0, elapsed)
        self.load_cuts.append(nodeid)

    def prepare(self, item: ItemRef, timeout_s: float | None) -> None:
        """Before the item's timer starts: import what its model load needs, and say so when
        a per-item timeout is shorter than a model load (see timeouts.py)."""
        if item.point.config is None or self.resumed(item) is not None:
            return
        note = timeouts.too_short(timeout_s, self.longest_load_s)
        if note is not None and note not in self.notes:
            self.notes.append(note)
        try:
            prepare = getattr(self.runner_for(item), "prepare", None)  # local runners only
            if prepare is None or self.checks_for(item):
                return  # runs elsewhere, or will not run here (pre-flight skips or fails it)
            key = (item.nodeid.split("::")[0], loading.load_key(item.config))
            if key not in self._prepared:
                self._prepared.add(key)
                prepare(self.spec_for(item))
        except Exception:  # best effort: the item's own run reports any problem
            return

    def run_item(
        self,
        item: ItemRef,
        checks: list[Check],
        runner: Runner,
        record: Callable[[ItemOutcome], None],
    ) -> Measurement:
        """Run one item, ``record`` its measurement and JUnit properties, then apply the gate.

        ``record`` is called before a gate or validity failure is raised, so a failed item
        still carries what it measured.
        """
        self.interrupted = None  # set by _measure when this item's run ends abnormally
        if checks:
            raise PreflightError(
                "pre-flight failed:\n" + "\n".join(c.render() for c in checks),
                "fix the problems above (all are listed)",
            )
        config = item.config
        measurement, extra = self._measure(item, runner)
        hardware = self.host.hardware(config.device)
        # A window still disturbed after its retries is no sample for the gate: its cycle is
        # lost, with the reason. One kept under on_disturbed: warn makes its verdict say so.
        disturbed = disturbance.must_fail(measurement.warnings, config.validity)
        verdict, stats = (
            (None, None)
            if disturbed
            else self._judge(item, hardware, measurement.metrics.model_dump(), measurement.quality)
        )
        flags = stability.disturbance_flags(measurement.warnings, config.validity.disturbed_by)
        key = gate_key(item.plan.study_hash, item.point.config_hash, item.point)
        kept = self.disturbed.note(key, item.cycle, [] if disturbed else flags)
        if verdict is not None and kept is not None:
            verdict.note = f"{verdict.note}; {kept}" if verdict.note else kept
        unstable = self.gate.unstable_warning(item.plan.gate, stats)
        if unstable is not None and all(w.code != unstable.code for w in measurement.warnings):
            measurement = measurement.model_copy(
                update={"warnings": [*measurement.warnings, unstable]}
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
        own = verdict.split()[0] if verdict is not None else None
        if own is not None and own.failed:  # an A/B pair's verdict is the pair's report
            raise GateFailure(
                explain.headline(item.point.id, item.cycle, own) + "\n" + gate_table(own),
                explain.fix(own),
                summary=explain.summary(item.point.id, item.cycle, own),
            )
        if disturbed:
            raise ValidityFailure(*disturbance.failure(measurement.warnings, config.validity))
        if self.settings.require_energy and measurement.energy.source is None:
            raise EnergyRequired(
                f"no energy measured on {config.device}: {measurement.energy.reason}",
                "run where the energy source works (NVML for cuda, RAPL for cpu), or drop "
                "--llem-require-energy",
            )
        failing = [w for w in measurement.warnings if w.code in config.validity.fail_on]
        if failing:
            raise ValidityFailure(
                "validity warnings marked fail_on:\n"
                + "\n".join(f"  {w.code}: {w.message}" for w in failing),
                "fix the measurement conditions, or remove the codes from validity.fail_on",
            )
        return measurement

    def _judge(
        self,
        item: ItemRef,
        hardware: str,
        metrics: dict[str, Any],
        quality: QualityRecord | None = None,
    ) -> tuple[Verdict | None, dict[str, dict[str, float]] | None]:
        """The gate's verdict for an item: against the baseline, or, for an A/B arm, against
        the other arm of the same cycles (paired); the config's quality: limits on its
        answers (``quality``) beside them."""
        point, plan = item.point, item.plan
        if point.arm is not None and point.pair is not None:
            keys = {arm: arm_key(plan.study_hash, point.pair, arm) for arm in AB_ARMS}
            return judge_pair(
                self.gate,
                plan.gate,
                keys,
                point.arm,
                item.cycle,
                plan.execution.n_cycles,
                metrics,
                configs=len({p.pair for p in plan.valid_points}),
                quality=quality,
                checks=item.config.quality,
            )
        return self.gate.judge(
            plan.gate,
            point.config_hash,
            hardware,
            metrics,
            cycle=item.cycle,
            n_cycles=plan.execution.n_cycles,
            study_hash=plan.study_hash,
            point_id=point.id,
            configs=len(plan.valid_points),
            study_name=plan.name,
            quality=quality,
            checks=item.config.quality,
        )

    def expect(self, items: Iterable[ItemRef]) -> None:
        """What collection selected: the gate decides each config on all its cycles, and
        learns here which of them this session will run."""
        selected: dict[str, tuple[int, set[int]]] = {}
        plans: dict[str, tuple[StudyPlan, dict[str, int]]] = {}
        for item in items:
            if item.point.config is None:
                continue
            key = gate_key(item.plan.study_hash, item.point.config_hash, item.point)
            entry = selected.setdefault(key, (item.plan.execution.n_cycles, set()))
            entry[1].add(item.cycle)
            counts = plans.setdefault(str(item.plan.path), (item.plan, {}))[1]
            counts[item.point.config_hash] = counts.get(item.point.config_hash, 0) + 1
        for key, (n_cycles, cycles) in selected.items():
            self.gate.ledger.expect(key, n_cycles, cycles)
        history = read_history(self.settings.results_dir / "results.jsonl")
        for path, (plan, counts) in plans.items():
            skips = {
                p.config_hash: reason
                for p in plan.valid_points
                if p.config is not None
                and p.config_hash in counts
                and (reason := missing_hardware(p.config, self.host, self.settings.energy))
            }
            lines, record = plan_study(plan, self.gate, self.host, history, counts, skips)
            self.plan_lines[path] = lines
            self.planning.append(record)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """An attempt of one of this process's items ended without a sample: note why, so
        its config's last item knows that cycle is missing."""
        identity = getattr(report, "llem_item", None)
        if identity is None or report.when == "teardown" or report.outcome == "passed":
            return
        if report.when == "setup" or report.when == "call":
            key = gate_key(identity["study_hash"], identity["config_hash"], identity)
            reason = outcome_reason("skipped" if report.skipped else "failed", _short_text(report))
            self.gate.ledger.lose(key, identity["cycle"], reason)

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
        summary["order"] = self.order
        summary["planning"] = self.planning
        if self.load_cuts:
            self.notes.append(timeouts.load_cut_note(self.load_cuts, self.longest_load_s))
        # The pool's advice (persistent, mixed runners) follows this session's own.
        summary["notes"] = [*self.notes, *self.close()]
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput["llem"] = summary  # xdist carries it to the controller
        else:
            self.config.hook.pytest_llem_worker_summary(config=self.config, summary=summary)

    def close(self) -> list[str]:
        """Release every runner (models, containers); return notes for the user."""
        return self.pool.close()


def _short_text(report: pytest.TestReport) -> str:
    """A report's reason in one line: a skip's reason, else the failure's last line (the
    exception), which is what a user reads first."""
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    lines = [ln for ln in report.longreprtext.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def gate_key(study_hash: str, config_hash: str, who: Any) -> str:
    """The gate's key of an item's samples and cycles: its config in its study, or its arm of
    its A/B pair (``who``: a Point, or an item's identity dict)."""
    arm = who.get("arm") if isinstance(who, dict) else getattr(who, "arm", None)
    pair = who.get("pair") if isinstance(who, dict) else getattr(who, "pair", None)
    if arm is not None and pair is not None:
        return arm_key(study_hash, pair, arm)
    return sample_key(study_hash, config_hash)
