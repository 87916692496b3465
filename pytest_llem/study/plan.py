"""StudyPlan: the expanded grid, its identity and the order items run in."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_llem.study.experiment import ExperimentConfig
from pytest_llem.study.sections import (
    AB_ARMS,
    AbConfig,
    ExecutionConfig,
    GateConfig,
    RunnersConfig,
)


@dataclass(frozen=True)
class Point:
    """One grid point: a valid config, or the reason it is invalid."""

    id: str
    config_hash: str
    raw: dict[str, Any]
    config: ExperimentConfig | None
    error: str | None = None
    line: int | None = None
    origin: str = "sweep"
    fix: str | None = None
    arm: str | None = None  # A/B: reference or candidate
    pair: str | None = None  # A/B: the id of the grid point both arms share

    @property
    def valid(self) -> bool:
        """True when the point validated into an ExperimentConfig."""
        return self.config is not None

    @property
    def backend(self) -> str:
        """The point's backend, also for invalid points when the raw data names one."""
        if self.config is not None:
            return self.config.backend
        value = self.raw.get("backend")  # expansion names each raw point's backend
        return value if isinstance(value, str) else ""


@dataclass(frozen=True)
class PlannedItem:
    """One test item: a point in a given cycle (1-based)."""

    point: Point
    cycle: int
    name: str


@dataclass(frozen=True)
class StudyPlan:
    """Everything collection needs from a study file."""

    path: Path
    name: str
    study_hash: str
    points: tuple[Point, ...]
    execution: ExecutionConfig
    runners: RunnersConfig
    gate: GateConfig
    warnings: tuple[str, ...] = field(default=())
    # Advice printed under the collection header (LLenergyMeasure names accepted, ...):
    # not warnings, so that a project running with -W error still collects the file.
    notes: tuple[str, ...] = field(default=())
    # (planned model loads, distinct load keys) of the items in order; set by collection,
    # which knows the engines' load keys (this module does not import engines).
    planned_loads: tuple[int, int] | None = None
    ab: AbConfig | None = None  # same-session A/B: two arms per grid point

    @property
    def valid_points(self) -> tuple[Point, ...]:
        """Points that validated."""
        return tuple(p for p in self.points if p.valid)

    @property
    def invalid_points(self) -> tuple[Point, ...]:
        """Points that failed validation (collected as skipped items)."""
        return tuple(p for p in self.points if not p.valid)

    @property
    def backends(self) -> tuple[str, ...]:
        """Backends used by valid points, in first-seen order."""
        seen: dict[str, None] = {}
        for point in self.valid_points:
            seen[point.backend] = None
        return tuple(seen)

    def header(self) -> str:
        """The one-line collection summary of this study."""
        n_valid = len(self.valid_points)
        cycles = self.execution.n_cycles
        text = (
            f"Study {self.name} [{self.study_hash}]: {n_valid} config{'s' if n_valid != 1 else ''}"
            f" x {cycles} cycle{'s' if cycles != 1 else ''} = {n_valid * cycles} item"
            f"{'s' if n_valid * cycles != 1 else ''}"
        )
        if self.invalid_points:
            text += f" (+{len(self.invalid_points)} invalid, skipped)"
        if len(self.backends) > 1:
            text += f"; backends {', '.join(self.backends)} run in separate containers"
        return text

    def loads_line(self) -> str | None:
        """What the order costs in model loads, when there is more than one load key."""
        if self.planned_loads is None or self.planned_loads[1] < 2:
            return None
        loads, keys = self.planned_loads
        order = self.execution.cycle_order
        text = f"  {loads} model loads planned for {keys} load configurations ({order} order"
        if order == "shuffled":
            cycles = self.execution.n_cycles
            text += (
                f", kept to break order effects; interleaved would load "
                f"{keys + (cycles - 1) * (keys - 1)} times"
            )
        return text + ")"

    def items(self, load_key: LoadKey | None = None) -> list[PlannedItem]:
        """Valid points x cycles in ``cycle_order``; invalid points follow once each.

        ``shuffled`` is seeded by ``shuffle_seed`` or else the study hash, so the same file
        runs in the same order on every machine (xdist requires identical collection).

        With ``load_key`` (the engines' cache key), the other orders keep their meaning but
        load the model fewer times: points that share a key run next to each other (in the
        order their first point was written), and ``interleaved`` alternates the direction
        of its rounds (A B | B A | A B), so K keys over C cycles cost K + (C - 1)(K - 1)
        loads instead of K x C. ``shuffled`` is left as drawn: breaking order effects is its
        point, and ``loads_line`` says what it costs.
        """
        if self.ab is not None:
            return self._ab_items()
        valid = list(self.valid_points)
        cycles = self.execution.n_cycles
        order = self.execution.cycle_order
        keyed = load_key is not None and order != "shuffled"
        if keyed:
            assert load_key is not None
            valid = _grouped(valid, load_key)

        def name(point: Point, cycle: int) -> str:
            return point.id if cycles == 1 else f"{point.id}-c{cycle}"

        planned: list[PlannedItem] = []
        if order == "sequential":
            for point in valid:
                planned.extend(PlannedItem(point, c, name(point, c)) for c in range(1, cycles + 1))
        else:
            seed = self.execution.shuffle_seed
            rng = random.Random(seed if seed is not None else int(self.study_hash, 16))
            for cycle in range(1, cycles + 1):
                batch = list(valid)
                if order == "shuffled":
                    rng.shuffle(batch)
                elif keyed and cycle % 2 == 0:
                    batch.reverse()  # the round starts with the key the last one ended on
                planned.extend(PlannedItem(p, cycle, name(p, cycle)) for p in batch)
        planned.extend(PlannedItem(p, 1, p.id) for p in self.invalid_points)
        return planned

    def _ab_items(self) -> list[PlannedItem]:
        """A/B: both arms of a grid point back to back in each cycle, alternating which goes
        first (AB, BA, AB, ...) so that a linear drift within a cycle cancels over pairs;
        ``cycle_order`` orders the pairs as it orders points."""
        units: dict[str, list[Point]] = {}
        for point in self.valid_points:
            units.setdefault(point.pair or point.id, []).append(point)
        cycles = self.execution.n_cycles
        order = self.execution.cycle_order

        def pair(unit: list[Point], cycle: int) -> list[PlannedItem]:
            first = AB_ARMS if cycle % 2 else tuple(reversed(AB_ARMS))
            arms = sorted(unit, key=lambda p: first.index(p.arm or first[0]))
            name = (lambda p: p.id) if cycles == 1 else (lambda p: f"{p.id}-c{cycle}")
            return [PlannedItem(p, cycle, name(p)) for p in arms]

        planned: list[PlannedItem] = []
        groups = list(units.values())
        if order == "sequential":
            for unit in groups:
                for cycle in range(1, cycles + 1):
                    planned.extend(pair(unit, cycle))
        else:
            seed = self.execution.shuffle_seed
            rng = random.Random(seed if seed is not None else int(self.study_hash, 16))
            for cycle in range(1, cycles + 1):
                batch = list(groups)
                if order == "shuffled":
                    rng.shuffle(batch)
                for unit in batch:
                    planned.extend(pair(unit, cycle))
        planned.extend(PlannedItem(p, 1, p.id) for p in self.invalid_points)
        return planned

    def ab_line(self, shared_process: bool) -> str | None:
        """The A/B plan: the order, and what it costs in model loads."""
        if self.ab is None:
            return None
        pairs = len({p.pair for p in self.valid_points})
        cycles = self.execution.n_cycles
        text = (
            f"  A/B: {pairs} config{'s' if pairs != 1 else ''} x {cycles} cycles, reference and "
            "candidate back to back, alternating (AB, BA, AB, ...); gated on paired cycles"
        )
        if shared_process:
            # What the order costs, counted on the load keys (arms that load alike share one
            # model): collection sets planned_loads before this line is printed.
            loads, keys = self.planned_loads or (2 * pairs * cycles, 2 * pairs)
            if loads > keys:
                text += (
                    f"; both arms run in this process: {loads} model loads planned, the model "
                    "reloads at every switch: give an arm a runner (python:, docker:) to keep "
                    "each loaded"
                )
            else:
                text += (
                    f"; both arms run in this process and load alike: {loads} model "
                    f"load{'s' if loads != 1 else ''} planned"
                )
        else:
            text += "; each arm keeps its engine loaded in its own worker (one load per arm)"
        return text


def with_validity(plan: StudyPlan, **updates: Any) -> StudyPlan:
    """The plan with every valid point's ``validity:`` section updated (a run's override,
    such as ``--llem-on-disturbed``; validity is not in the config hash)."""
    points = []
    for point in plan.points:
        config = point.config
        if config is not None:
            validity = config.validity.model_copy(update=updates)
            config = config.model_copy(update={"validity": validity})
        points.append(dataclasses.replace(point, config=config))
    return dataclasses.replace(plan, points=tuple(points))


LoadKey = Callable[[ExperimentConfig], str]


def _grouped(points: list[Point], load_key: LoadKey) -> list[Point]:
    """Points with equal load keys next to each other, groups in first-seen order (stable)."""
    groups: dict[str, list[Point]] = {}
    for point in points:
        assert point.config is not None
        groups.setdefault(load_key(point.config), []).append(point)
    return [p for group in groups.values() for p in group]


def count_loads(items: Sequence[PlannedItem], load_key: LoadKey) -> tuple[int, int]:
    """(model loads, distinct load keys) of running ``items`` in order with a one-model cache."""
    loads, last, keys = 0, None, set()
    for item in items:
        if item.point.config is None:
            continue
        key = load_key(item.point.config)
        keys.add(key)
        if key != last:
            loads, last = loads + 1, key
    return loads, len(keys)
