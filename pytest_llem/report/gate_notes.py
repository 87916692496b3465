"""What the gate could not judge, said once under the tables: configs not decided on all their
cycles, baselines that hold a point only for other hardware or another config, gated energy
figures the baseline lacks, and GPU items that measured no energy."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_llem.gate.completeness import describe
from pytest_llem.gate.settle import Unsettled
from pytest_llem.gate.verdict import ENERGY_METRICS
from pytest_llem.results.records import ExperimentResult


def _unsettled(entries: Sequence[Unsettled], policy: str) -> list[str]:
    effect = "failed" if policy == "fail" else "warning only"
    return [
        f"inconclusive ({effect}): {u.point_id}: not decided on all its cycles: "
        f"{describe(u.missing)}"
        for u in entries
    ]


def _last_gates(results: Sequence[ExperimentResult]) -> dict[tuple[str, str], ExperimentResult]:
    """Per config, the last result that carries a gate verdict (it saw every cycle)."""
    out: dict[tuple[str, str], ExperimentResult] = {}
    for r in results:
        if r.gate:
            out[(r.study_hash, r.config_hash)] = r
    return out


def _baselines(results: Sequence[ExperimentResult]) -> list[str]:
    lines = []
    for r in _last_gates(results).values():
        gate = r.gate or {}
        if gate.get("baseline_match") in ("other_hardware", "other_config", "absent"):
            lines.append(f"not compared: {r.point_id}: {gate.get('note', '')}")
    return lines


def _energy(results: Sequence[ExperimentResult]) -> list[str]:
    lines = []
    for r in _last_gates(results).values():
        for c in (r.gate or {}).get("comparisons", []):
            if c.get("metric") in ENERGY_METRICS and c.get("kind") == "relative":
                note = c.get("note", "")
                if c.get("status") == "not_evaluated" and note == "no baseline value":
                    lines.append(
                        f"energy not compared: {r.point_id}: the baseline has no "
                        f"{c['metric']} (--llem-require-energy fails it)"
                    )
    unmeasured = [
        r
        for r in results
        if r.metrics is not None
        and r.energy is not None
        and r.energy.source is None
        and (r.config or {}).get("device") == "cuda"
    ]
    if unmeasured:
        reasons = sorted({r.energy.reason or "no reason given" for r in unmeasured if r.energy})
        lines.append(
            f"no energy measured on cuda: {len(unmeasured)} item(s): {'; '.join(reasons)} "
            "(--llem-require-energy fails them)"
        )
    return lines


def lines(
    results: Sequence[ExperimentResult], unsettled: Sequence[Unsettled], policy: str
) -> list[str]:
    """Every gate notice of a run, in the order a reviewer should read them."""
    return [*_unsettled(unsettled, policy), *_baselines(results), *_energy(results)]
