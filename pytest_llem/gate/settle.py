"""At the end of a run (or a merge of shards): the configs the gate could not decide on all
their cycles, which no item failed for, so that they fail loudly instead of passing.

A config's last item decides it when that item ran and measured. When the missing cycle is
the last to end (it failed, was skipped, timed out, crashed with its worker, or the session
was interrupted), no item carried the decision: this module finds those configs from the
results, with the reason for every missing cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_llem.gate.completeness import CycleRecord, describe, missing_from_records
from pytest_llem.gate.verdict import Comparison, status_of

DECIDED = frozenset({"pass", "fail", "inconclusive"})


@dataclass(frozen=True)
class Unsettled:
    """A gated config that no item decided: inconclusive, with what is missing."""

    study: str
    study_hash: str
    point_id: str
    config_hash: str
    nodeid: str  # the config's own id: ``<study file>::<point id>[gate]``
    study_file: str | None
    line: int | None
    missing: dict[int, str] = field(default_factory=dict)

    def message(self) -> str:
        """One line: which config, and which cycles are missing and why."""
        return (
            f"regression gate inconclusive for {self.point_id}: not decided on all its cycles: "
            f"{describe(self.missing)}"
        )

    def record(self) -> dict[str, Any]:
        """JSON-ready form for the report."""
        return {
            "study": self.study,
            "study_hash": self.study_hash,
            "point_id": self.point_id,
            "config_hash": self.config_hash,
            "nodeid": self.nodeid,
            "status": "inconclusive",
            "missing_cycles": {str(k): v for k, v in sorted(self.missing.items())},
        }


def _decided(results: Sequence[Any]) -> bool:
    """True when an item carried the config's final relative decision."""
    for r in results:
        gate = r.gate or {}
        relative = [
            c for c in gate.get("comparisons", []) if c.get("kind") in ("relative", "paired")
        ]
        if any(c.get("status") in DECIDED for c in relative):
            return True
        if gate.get("status") == "no_baseline":
            return True  # nothing to compare with: the baseline paths say so
    return False


def _records(items: Sequence[Any]) -> list[CycleRecord]:
    """A/B: one record per cycle, with a sample only when both arms measured it; otherwise the
    arm that did not, and why."""
    out = []
    for cycle in sorted({r.cycle for r in items}):
        arms = [r for r in items if r.cycle == cycle]
        lacking = [r for r in arms if r.metrics is None]
        if not lacking and len(arms) == 2:
            out.append(CycleRecord(cycle, "passed", True))
        elif lacking:
            first = lacking[0]
            out.append(CycleRecord(cycle, first.outcome, False, f"{first.arm}: {first.message}"))
        else:
            out.append(CycleRecord(cycle, "not run", False, "one arm did not run"))
    return out


def config_nodeid(nodeid: str, point_id: str, pair: bool = False) -> str:
    """``study.yaml::point-c2`` -> ``study.yaml::point[gate]`` (an A/B pair: ``[ab]``)."""
    return f"{nodeid.rsplit('::', 1)[0]}::{point_id}[{'ab' if pair else 'gate'}]"


@dataclass(frozen=True)
class PairVerdict:
    """An A/B pair's final paired verdict, reported as the pair: ``<study>::<pair>[ab]``."""

    study: str
    study_hash: str
    pair: str
    nodeid: str
    decided_by: str  # the arm item whose cycle completed the pairs
    study_file: str | None
    line: int | None
    verdict: dict[str, Any]  # the paired comparisons of the gate's Verdict, JSON-ready


def decided_pairs(results: Iterable[Any]) -> list[PairVerdict]:
    """Every A/B pair some item decided: its paired comparisons at the last pair."""
    found: dict[tuple[str, str], PairVerdict] = {}
    for r in results:
        pair = getattr(r, "pair", None)
        paired = [c for c in (r.gate or {}).get("comparisons", []) if c.get("kind") == "paired"]
        if pair is None or not any(c.get("status") in DECIDED for c in paired):
            continue
        found[(r.study_hash, pair)] = PairVerdict(
            study=r.study,
            study_hash=r.study_hash,
            pair=pair,
            nodeid=config_nodeid(r.nodeid, pair, pair=True),
            decided_by=r.nodeid,
            study_file=r.study_file,
            line=r.line,
            verdict={
                **(r.gate or {}),
                "comparisons": paired,
                "status": status_of([Comparison.model_validate(c) for c in paired]),
            },
        )
    return list(found.values())


def unsettled(
    results: Iterable[Any], gated: Callable[[str], bool], interrupted: bool = False
) -> list[Unsettled]:
    """Gated configs with at least one sample and a missing cycle that no item decided.

    ``gated(study_hash)`` says whether relative limits were in force for a study. A config
    none of whose cycles measured anything (every item skipped for want of a GPU, say) is
    not here: its items say so themselves, and nothing about it passed.
    """
    groups: dict[tuple[str, str], list[Any]] = {}
    for r in results:
        # Both arms of an A/B pair are one unit: a cycle counts when both measured it.
        unit = f"ab:{r.pair}" if getattr(r, "pair", None) else r.config_hash
        groups.setdefault((r.study_hash, unit), []).append(r)
    out: list[Unsettled] = []
    for (study_hash, config_hash), items in groups.items():
        n_cycles = max((r.n_cycles or 0 for r in items), default=0) or max(r.cycle for r in items)
        paired = any(getattr(r, "arm", None) for r in items)
        if not (paired or gated(study_hash)) or _decided(items):
            continue
        records = (
            _records(items)
            if paired
            else [CycleRecord(r.cycle, r.outcome, r.metrics is not None, r.message) for r in items]
        )
        missing = missing_from_records(n_cycles, records, interrupted)
        if not missing or len(missing) == n_cycles:
            continue
        first = min(items, key=lambda r: r.cycle)
        name = getattr(first, "pair", None) or first.point_id
        out.append(
            Unsettled(
                study=first.study,
                study_hash=study_hash,
                point_id=name,
                config_hash=config_hash,
                nodeid=config_nodeid(first.nodeid, name, pair=paired),
                study_file=first.study_file,
                line=first.line,
                missing=missing,
            )
        )
    return out
