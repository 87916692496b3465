"""After the run, every item shows its config's final verdict: no ``pending`` left.

While a config runs, its relative limits are ``pending`` on every cycle but the one that
completes it (the gate decides on all cycles at once). The JSONL log keeps what each item knew
when it finished; the report and the terminal table show, on every cycle, the comparisons that
decided the config (or its A/B pair), with ``decided_by`` naming the item or the ``[gate]`` /
``[ab]`` report that carries them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_llem.gate.settle import PairVerdict, Unsettled
from pytest_llem.gate.verdict import Comparison, status_of
from pytest_llem.results.records import ExperimentResult

_Key = tuple[str, str]  # (study hash, config hash or "ab:<pair>")


def _key(r: ExperimentResult) -> _Key:
    return (r.study_hash, f"ab:{r.pair}" if r.pair else r.config_hash)


def _deciding(results: Sequence[ExperimentResult]) -> dict[_Key, tuple[list[dict[str, Any]], str]]:
    """Per config: the comparisons of the item that decided its relative limits, and its id."""
    out: dict[_Key, tuple[list[dict[str, Any]], str]] = {}
    for r in results:  # in finish order: a later decision (a rerun's) is the last word
        comparisons = (r.gate or {}).get("comparisons", [])
        if any(c.get("kind") == "relative" and c.get("status") != "pending" for c in comparisons):
            out[_key(r)] = (comparisons, r.nodeid)
    return out


def _replace(
    comparisons: list[dict[str, Any]], final: list[dict[str, Any]], kind: str
) -> list[dict[str, Any]]:
    """The item's comparisons with its pending ones of ``kind`` taken from ``final``."""
    by_limit = {(c.get("metric"), c.get("limit")): c for c in final if c.get("kind") == kind}
    return [
        by_limit.get((c.get("metric"), c.get("limit")), c)
        if c.get("status") == "pending" and c.get("kind") == kind
        else c
        for c in comparisons
    ]


def _unsettled_comparisons(
    comparisons: list[dict[str, Any]], entry: Unsettled
) -> list[dict[str, Any]]:
    note = entry.message().split(": ", 1)[1]
    return [
        {**c, "status": "inconclusive", "note": note}
        if c.get("status") == "pending" and c.get("kind") in ("relative", "paired")
        else c
        for c in comparisons
    ]


def finalize(
    results: Sequence[ExperimentResult],
    unsettled: Sequence[Unsettled] = (),
    pairs: Sequence[PairVerdict] = (),
) -> list[ExperimentResult]:
    """Copies of ``results`` whose pending comparisons carry their config's final verdict."""
    decided = _deciding(results)
    pair_of = {(p.study_hash, f"ab:{p.pair}"): p for p in pairs}
    # An unsettled A/B pair's config hash is its unit, ``ab:<pair>``, as here.
    open_ = {(u.study_hash, u.config_hash): u for u in unsettled}
    out = []
    for r in results:
        gate = r.gate or {}
        comparisons = gate.get("comparisons", [])
        if not any(c.get("status") == "pending" for c in comparisons):
            out.append(r)
            continue
        key = _key(r)
        if key in pair_of:
            pair = pair_of[key]
            comparisons = _replace(comparisons, pair.verdict["comparisons"], "paired")
            by = pair.nodeid
        elif key in decided:
            final, by = decided[key]
            comparisons = _replace(comparisons, final, "relative")
        elif key in open_:
            comparisons = _unsettled_comparisons(comparisons, open_[key])
            by = open_[key].nodeid
        else:
            out.append(r)  # nothing decided it (an interrupted run): pending is the truth
            continue
        status = status_of([Comparison.model_validate(c) for c in comparisons])
        final_gate = {**gate, "comparisons": comparisons, "status": status, "decided_by": by}
        out.append(r.model_copy(update={"gate": final_gate}))
    return out
