"""The plan header's promises, before any item runs: for each gated config with a baseline, the
smallest change its cycles can detect (and, where a limit is finer, the cycles that would
decide it); and the study's estimated wall time. Printed under the collection header (also
with ``--collect-only``) and carried in the JSON report beside the actual wall time."""

from __future__ import annotations

import dataclasses
from typing import Any

from pytest_llem.gate.apply import Gate
from pytest_llem.gate.detectable import detectable
from pytest_llem.measure.estimate import Past, estimate
from pytest_llem.preflight.host import Host
from pytest_llem.study.plan import StudyPlan


def _gate_lines(plan: StudyPlan, gate: Gate, host: Host) -> tuple[list[str], list[dict[str, Any]]]:
    baseline = gate.baseline
    relative = [lim for lim in gate.limits(plan.gate) if lim.kind == "relative"]
    if baseline is None or not relative:
        return [], []
    sig = plan.gate.significance
    points = plan.valid_points
    tests = len(points) * len(relative)
    level = f"alpha {sig.fail_alpha(tests):.3g}" + (
        f" (= {sig.alpha:g} / {tests} tests)" if sig.fail_alpha(tests) < sig.alpha else ""
    )
    lines = [
        f"  gate: baseline {baseline.name!r}, {plan.execution.n_cycles} cycles a side, {level}, "
        "80% power: smallest change each config can detect"
    ]
    records = []
    for point in points:
        assert point.config is not None
        hardware = host.hardware(point.config.device)
        found = baseline.lookup(point.config_hash, hardware, point.id, plan.name)
        if found.entry is None:
            lines.append(f"    {point.id}: not compared: {found.note}")
            records.append({"point_id": point.id, "config_hash": point.config_hash, "metrics": {}})
            continue
        rows = detectable(found.entry.samples, relative, plan.execution.n_cycles, sig, tests)
        lines.append(f"    {point.id}: " + "; ".join(row.text() for row in rows))
        records.append(
            {
                "point_id": point.id,
                "config_hash": point.config_hash,
                "metrics": {
                    row.metric: {
                        "limit": row.limit,
                        "min_detectable_change": row.min_detectable_change,
                        "cycles_to_decide": row.cycles_to_decide,
                    }
                    for row in rows
                },
            }
        )
    return lines, records


def plan_study(
    plan: StudyPlan,
    gate: Gate,
    host: Host,
    history: dict[str, Past],
    selected: dict[str, int],
    skips: dict[str, str] | None = None,
) -> tuple[list[str], dict[str, Any]]:
    """Lines for the collection header, and the record for the JSON report.

    ``selected``: cycles this session runs per config hash (after -k, -m, --lf and shards);
    ``skips``: configs pre-flight will skip here for want of hardware, with the reason (their
    items are counted apart, not estimated).
    """
    lines, configs = _gate_lines(plan, gate, host)
    execution = plan.execution
    skips = skips or {}
    chosen = [
        (p.config_hash, p.config, selected[p.config_hash])
        for p in plan.valid_points
        if p.config is not None and selected.get(p.config_hash) and p.config_hash not in skips
    ]
    skipped = sum(selected.get(h, 0) for h in skips)
    n_items = sum(cycles for _, _, cycles in chosen)
    everything = len(plan.valid_points) * execution.n_cycles
    loads = plan.planned_loads[0] if plan.planned_loads else len(chosen)
    loads = min(loads, n_items) if n_items < everything else loads
    gaps = execution.experiment_gap_s * max(0, n_items - 1)
    devices = {c.device: c.baseline for _, c, _ in chosen}
    idle = [b.duration_s for b in devices.values() if b.enabled]
    guess = estimate(chosen, loads, history, gaps, idle)
    if skipped:
        reasons = sorted(set(skips.values()))
        guess = dataclasses.replace(guess, skipped=skipped, skip_reason=reasons[0])
    text = guess.text()
    if n_items + skipped < everything:
        text += f"; {n_items + skipped} of the study's {everything} items are selected"
    lines.append(f"  {text}")
    record = {
        "study_hash": plan.study_hash,
        "study": plan.name,
        "estimated_s": round(guess.seconds, 1),
        "estimate": text,
        "skipped_items": skipped,
        "configs": configs,
    }
    return lines, record
