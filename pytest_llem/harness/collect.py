"""Study files become pytest collectors; grid points x cycles become items.

Items subclass ``pytest.Function`` with a ``callobj`` that requests fixtures: pytest gives
fixtures only to Function items through public API (pytest issues #2471, #3639), and the GPU
pre-flight and the runner dispatch are fixtures so that users can override them in a conftest.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_llem import study
from pytest_llem.engines import loading
from pytest_llem.errors import LlemError, StudyError
from pytest_llem.gate import feasibility
from pytest_llem.gate.apply import limits_in_force
from pytest_llem.harness import failure, timeouts
from pytest_llem.harness.session import SESSION_KEY, ItemOutcome, ItemRef, LlemSession
from pytest_llem.preflight.check import Check
from pytest_llem.results.redact import redact
from pytest_llem.runners.run_spec import Runner
from pytest_llem.settings.resolve import Settings
from pytest_llem.study.experiment import ExperimentConfig
from pytest_llem.study.plan import PlannedItem, StudyPlan, count_loads, with_validity

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

# Each backend's marker comes from the registry (BackendSpec.marker).
MARKERS: tuple[str, ...] = (
    "llem: an LLM inference energy benchmark item (pytest-llem)",
    "gpu: needs a CUDA GPU",
)

PLANS_KEY = pytest.StashKey[list[StudyPlan]]()
MEASUREMENT_KEY = pytest.StashKey[dict[str, Any]]()
SUITE_PROPERTIES_KEY = pytest.StashKey[list[tuple[str, object]]]()


class LlemStudyWarning(pytest.PytestWarning):
    """A study file that collects, but with something its author should know."""


def is_study_file(path: Path, settings: Settings) -> bool:
    """True if ``path`` matches one of the ``llem_study_patterns``."""
    return any(fnmatch.fnmatch(path.name, pattern) for pattern in settings.study_patterns)


def item_timeout(plan: StudyPlan, settings: Settings) -> float | None:
    """The per-item timeout: the study's ``execution.timeout_s``, else ini ``llem_item_timeout``."""
    if plan.execution.timeout_s is not None:
        return plan.execution.timeout_s
    return settings.item_timeout_s


def _run_item(
    request: pytest.FixtureRequest,
    llem_session: LlemSession,
    llem_preflight: list[Check],
    llem_runner: Runner,
) -> None:
    """The body of every experiment item: dispatch it to its runner through the session."""
    item = request.node
    assert isinstance(item, ExperimentItem)
    llem_session.run_item(item.ref, llem_preflight, llem_runner, item.record)


def _load_keys() -> Callable[[ExperimentConfig], str]:
    """The engines' load key, computed once per config (a plan asks for each several times)."""
    known: dict[int, tuple[ExperimentConfig, str]] = {}

    def key(config: ExperimentConfig) -> str:
        if id(config) not in known:  # the config is kept with its key, so ids stay unique
            known[id(config)] = (config, loading.load_key(config))
        return known[id(config)][1]

    return key


class StudyFile(pytest.File):
    """A study YAML file: loads the plan (pure) and yields one item per point and cycle."""

    def __init__(self, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings

    def _check_ab(self, plan: StudyPlan) -> None:
        """Refuse an A/B study that compares nothing, or that could never decide."""
        assert plan.ab is not None
        cli = self.settings.ab_cli
        if plan.ab.identical(cli) and not plan.ab.calibrate:
            raise self.CollectError(
                f"{self.path}: ab: the reference and candidate arms are identical "
                f"(runner {plan.ab.runner_of('reference', cli)}, same env and overrides)\n"
                "  fix: give the candidate what differs (runner:, env:, or a field such as "
                "precision:), or set ab: {calibrate: true} for an A/A run that sizes the noise"
            )
        sig = plan.gate.significance
        if plan.execution.n_cycles < sig.min_cycles:
            raise self.CollectError(
                f"{self.path}: execution.n_cycles is {plan.execution.n_cycles} but an A/B study "
                f"is judged on paired cycles and gate.significance.min_cycles is "
                f"{sig.min_cycles}: every comparison would be inconclusive\n"
                f"  fix: set execution.n_cycles: {max(sig.min_cycles, 8)} (8 pairs suit the "
                "exact sign-flip test)"
            )

    def _check_gate_can_fail(self, plan: StudyPlan) -> None:
        """Refuse a comparison that could never fail, and a baseline that could never gate
        (a save from too few cycles), before anything is measured (also under
        ``--collect-only``)."""
        s = self.settings
        if not (s.compare or s.save_baseline):
            return
        limits = limits_in_force(s.fail_on_cli, s.fail_on_ini, plan.gate, True)
        never = feasibility.problems(
            plan.gate, plan.execution.n_cycles, limits, configs=len(plan.valid_points)
        )
        if not never:
            return
        if s.compare:
            raise self.CollectError(
                f"{self.path}: this regression gate can never fail:\n  " + "\n  ".join(never)
            )
        raise self.CollectError(
            f"{self.path}: baseline {s.save_baseline!r} would be saved from "
            f"{plan.execution.n_cycles} cycle(s) per config, and a comparison with it could "
            "never fail:\n  " + "\n  ".join(never) + "\n  nothing was run or saved"
        )

    def collect(self) -> list[pytest.Item]:
        """Load the plan and build the items in ``cycle_order``."""
        try:
            plan = study.load(
                self.path,
                root=self.settings.rootdir,
                max_points=self.settings.max_items,
                registry=self.settings.backends,
                cycles=self.settings.cycles,
            )
        except StudyError as exc:
            raise self.CollectError(str(exc)) from None
        except LlemError as exc:
            raise self.CollectError(f"{self.path}: {exc}") from None
        if self.settings.on_disturbed is not None:
            plan = with_validity(plan, on_disturbed=self.settings.on_disturbed)
        problems = loading.study_problems(plan, self.settings.backends)
        if problems:
            raise self.CollectError(str(StudyError(self.path, problems))) from None
        count = self.settings.others.repeat_count
        if count > 1:
            raise self.CollectError(
                f"{self.path}: pytest-repeat's --count {count} does not repeat study items\n"
                f"  fix: set execution.n_cycles: {count} in the study (its cycles are its "
                "repeats: gated together, kept on one worker), and run it without --count"
            )
        for message in plan.warnings:
            self.warn(LlemStudyWarning(f"{self.path.name}: {message}"))
        timeout_s = item_timeout(plan, self.settings)
        if timeout_s is not None and not self.config.pluginmanager.hasplugin("timeout"):
            source = (
                "execution.timeout_s"
                if plan.execution.timeout_s is not None
                else "ini llem_item_timeout"
            )
            raise self.CollectError(
                f"{self.path}: {source} is set, and per-item timeouts are enforced by "
                "pytest-timeout, which is not installed\n"
                '  fix: pip install "pytest-llem[timeout]" (or pytest-timeout), or remove '
                f"{source}"
            )
        if plan.ab is not None:
            self._check_ab(plan)
        if plan.ab is None:
            self._check_gate_can_fail(plan)
        # Reload-aware order: the engines' load keys decide which points share a loaded model.
        load_key = _load_keys()
        ordered = plan.items(load_key)
        plan = dataclasses.replace(plan, planned_loads=count_loads(ordered, load_key))
        self.config.stash.setdefault(PLANS_KEY, []).append(plan)
        items: list[pytest.Item] = []
        shared: Any = None
        for index, planned in enumerate(ordered):
            item = ExperimentItem.build(self, plan, planned, shared, timeout_s)
            item.plan_index = index  # position in the study's cycle_order (see ordering.py)
            # Every item of a file requests the same fixtures through the same callobj, so the
            # fixture closure is computed once and shared, as pytest does for parametrized
            # functions; per-item computation dominated collection time at 10k points.
            shared = item._fixtureinfo
            items.append(item)
        return items


class ExperimentItem(pytest.Function):
    """One grid point in one cycle."""

    def __init__(self, *, plan: StudyPlan, planned: PlannedItem, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plan = plan
        self.point = planned.point
        self.cycle = planned.cycle
        self.plan_index = 0

    @classmethod
    def build(
        cls,
        parent: StudyFile,
        plan: StudyPlan,
        planned: PlannedItem,
        fixtureinfo: Any = None,
        timeout_s: float | None = None,
    ) -> ExperimentItem:
        """Create the item and attach its markers (skip for invalid points, timeout)."""
        item: ExperimentItem = cls.from_parent(
            parent,
            name=planned.name,
            callobj=_run_item,
            plan=plan,
            planned=planned,
            fixtureinfo=fixtureinfo,
        )
        point = planned.point
        item.add_marker("llem")
        item.add_marker(point.backend)
        if point.config is None:
            item.add_marker(pytest.mark.skip(reason=f"invalid config: {point.error}"))
        elif point.config.device == "cuda":
            item.add_marker("gpu")
        if timeout_s is not None:
            # pytest-timeout's signal method fails the hung item with its stack and lets the
            # session go on (the thread method would end the whole process).
            item.add_marker(pytest.mark.timeout(timeout_s, method="signal"))
        return item

    @property
    def ref(self) -> ItemRef:
        """The item as the session sees it: plan, point and cycle, no pytest node."""
        return ItemRef(self.nodeid, self.plan, self.point, self.cycle, self.path.parent)

    def record(self, outcome: ItemOutcome) -> None:
        """Keep a run's measurement (for the report) and its JUnit properties.

        With ``llem_junit_properties = suite`` the properties travel on the report instead of
        ``user_properties`` (which pytest writes into the testcase), and the controller adds
        them to the testsuite (see report/junit_suite.py).
        """
        self.stash[MEASUREMENT_KEY] = outcome.measurement
        assert isinstance(self.parent, StudyFile)
        if self.parent.settings.junit_properties == "suite":
            self.stash[SUITE_PROPERTIES_KEY] = outcome.properties
        else:
            self.user_properties.extend(outcome.properties)

    def identity(self) -> dict[str, Any]:
        """Who this item is, as primitives (travels on reports, also through xdist)."""
        point = self.point
        return {
            "study": self.plan.name,
            "study_hash": self.plan.study_hash,
            "study_file": str(self.path),
            "point_id": point.id,
            "config_hash": point.config_hash,
            "cycle": self.cycle,
            "n_cycles": self.plan.execution.n_cycles,
            "arm": point.arm,
            "pair": point.pair,
            "line": point.line,
            "config": point.config.model_dump(mode="json") if point.config else point.raw,
            "study_gate": self.plan.gate.model_dump(mode="json"),
        }

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """The study file, the line of the point (0-based) and the item's name.

        Reporters that print ``location`` (pytest-sugar, failure headlines) join the path and
        the label with ``::``, so the label is the name alone: what they print is the nodeid
        that ``pytest <id>`` selects.
        """
        line = (self.point.line or 1) - 1
        return self.path, line, self.name

    def repr_failure(  # type: ignore[override] # pytest types excinfo as ExceptionInfo[BaseException]
        self, excinfo: ExceptionInfo[BaseException]
    ) -> str | TerminalRepr:
        """One line that says what happened (the summary, JUnit's message) over the whole text:
        a domain error's message and fix rather than a traceback, a timeout with its phase."""
        exc = excinfo.value
        session = self.config.stash.get(SESSION_KEY, None)
        cut = session.interrupted if session is not None else None
        if isinstance(exc, LlemError):
            text = f"{type(exc).__name__}: {exc}"
        else:
            text = str(super().repr_failure(excinfo))
            if timeouts.is_timeout(exc) and cut is not None and cut.phase == "load":
                text += "\n" + timeouts.load_cut_explanation()
        line = failure.reason(exc, cut, self.timeout_s())
        return failure.represent(redact(text), redact(line), self.path, (self.point.line or 1) - 1)

    def timeout_s(self) -> float | None:
        """The item's pytest-timeout seconds: its marker, else --timeout / ini / env."""
        marker = self.get_closest_marker("timeout")
        if marker is not None:
            return timeouts.marker_timeout(marker.args, marker.kwargs)
        assert isinstance(self.parent, StudyFile)
        return self.parent.settings.others.timeout_s

    def prepare(self) -> None:
        """Before pytest-timeout's timer starts: imports for the model load, timeout advice."""
        session = self.config.stash.get(SESSION_KEY, None)
        if session is not None and self.point.config is not None:
            session.prepare(self.ref, self.timeout_s())
