"""The JSON report document: session, studies, per-config statistics, items.

Contract (later versions extend it, never break it): top-level ``report_version``,
``session``, ``study`` (list), ``configs`` (cross-cycle statistics and gate status per
config, and ``quality`` where the study set ``quality:``) and ``items`` (one
ExperimentResult each, with its ``quality`` record and the gate's quality comparisons).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_llem.gate.cycles import collect
from pytest_llem.gate.settle import Unsettled
from pytest_llem.results.records import ExperimentResult
from pytest_llem.stats.summary import summarise

REPORT_VERSION = 1


def studies(
    results: Sequence[ExperimentResult],
    gates: Mapping[str, dict[str, Any]],
    planning: Mapping[str, dict[str, Any]],
) -> list[dict[str, Any]]:
    """One entry per study: name, hash, file, item count, its ``gate:`` block, and its plan:
    the estimated wall time beside the actual one (first start to last finish), and per gated
    config and metric the smallest detectable change (``planning``)."""
    out: dict[str, dict[str, Any]] = {}
    for r in results:
        entry = out.setdefault(
            r.study_hash,
            {
                "name": r.study,
                "study_hash": r.study_hash,
                "file": r.study_file,
                "items": 0,
                "gate": gates.get(r.study_hash, {}),
            },
        )
        entry["items"] += 1
    for study_hash, entry in out.items():
        plan = planning.get(study_hash)
        if plan is not None:
            entry["estimated_s"] = plan["estimated_s"]
            entry["estimate"] = plan["estimate"]
            entry["planning"] = plan["configs"]
        mine = [r for r in results if r.study_hash == study_hash]
        entry["actual_s"] = _span(mine)
    return list(out.values())


def _span(results: Sequence[ExperimentResult]) -> float | None:
    """Seconds from the first item's start to the last one's finish."""
    starts = [r.started_at for r in results if r.started_at]
    ends = [r.finished_at for r in results if r.finished_at]
    if not starts or not ends:
        return None
    first, last = dt.datetime.fromisoformat(min(starts)), dt.datetime.fromisoformat(max(ends))
    return round((last - first).total_seconds(), 1)


def configs(
    results: Sequence[ExperimentResult], unsettled: Sequence[Unsettled] = ()
) -> list[dict[str, Any]]:
    """Per config: cycles, outcomes, cross-cycle statistics, and the final gate status
    (inconclusive, with the missing cycles, for a config no item decided)."""
    open_ = {(u.study_hash, u.config_hash): u for u in unsettled}
    groups: dict[tuple[str, str], list[ExperimentResult]] = {}
    for r in results:
        groups.setdefault((r.study_hash, r.config_hash), []).append(r)
    out = []
    for (study_hash, config_hash), items in groups.items():
        # The gate's last word is that of the item that finished last (it saw every cycle),
        # which need not be the highest cycle when a plugin reordered the items.
        gates = [r.gate for r in items if r.gate]
        items = sorted(items, key=lambda r: r.cycle)
        measured = [r.metrics.model_dump() for r in items if r.metrics is not None]
        entry = {
            "study_hash": study_hash,
            "config_hash": config_hash,
            "point_id": items[0].point_id,
            "hardware": next((r.hardware for r in items if r.hardware), None),
            "cycles": [r.cycle for r in items],
            "outcomes": [r.outcome for r in items],
            "stats": summarise(collect(measured)),
            "gate": gates[-1]["status"] if gates else None,
        }
        answers = quality_summary(items)
        if answers is not None:
            entry["quality"] = answers
        left = open_.get((study_hash, config_hash))
        if left is not None:
            entry["gate"] = "inconclusive"
            entry["missing_cycles"] = left.record()["missing_cycles"]
        out.append(entry)
    return out


def quality_summary(items: Sequence[ExperimentResult]) -> dict[str, Any] | None:
    """A config's answers over its cycles (None without a ``quality:`` section): mean output
    tokens per request and perplexity, per cycle and their mean."""
    records = [(r.cycle, r.quality) for r in items if r.quality is not None]
    if not records:
        return None
    lengths = [q.output_tokens_per_request for _, q in records]
    ppl = [q.perplexity for _, q in records if q.perplexity is not None]
    return {
        "cycles": [c for c, _ in records],
        "output_tokens_per_request": lengths,
        "output_tokens_per_request_mean": sum(lengths) / len(lengths),
        "perplexity": ppl,
        "perplexity_mean": sum(ppl) / len(ppl) if ppl else None,
        "notes": sorted({q.note for _, q in records if q.note}),
    }


def build(
    results: Sequence[ExperimentResult],
    session: dict[str, Any],
    gates: Mapping[str, dict[str, Any]],
    unsettled: Sequence[Unsettled] = (),
    planning: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The whole report document."""
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome] = counts.get(r.outcome, 0) + 1
    # Verdicts are counted once, on the item that decided them: after the run, the other
    # cycles show the same verdict with ``decided_by`` (report/final.py).
    deciding = [r for r in results if not (r.gate or {}).get("decided_by")]
    gate_failures = sum(1 for r in deciding if (r.gate or {}).get("status") == "fail")
    inconclusive = sum(1 for r in deciding if (r.gate or {}).get("status") == "inconclusive")
    return {
        "report_version": REPORT_VERSION,
        "session": {
            **session,
            "counts": counts,
            "gate_failures": gate_failures,
            "gate_inconclusive": inconclusive + len(unsettled),
            "gate_unsettled": [u.record() for u in unsettled],
        },
        "study": studies(results, gates, planning or {}),
        "configs": configs(results, unsettled),
        "items": [r.model_dump(mode="json") for r in results],
    }
