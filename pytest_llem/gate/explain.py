"""Words for a verdict: the failure heading, the evidence of an inconclusive limit, the fix."""

from __future__ import annotations

from pytest_llem.gate import quality
from pytest_llem.gate.verdict import Verdict
from pytest_llem.stats.power import MAX_CYCLES


def _missing(verdict: Verdict) -> dict[int, str]:
    return next((c.missing_cycles for c in verdict.comparisons if c.missing_cycles), {})


def headline(point_id: str, cycle: int | None, verdict: Verdict) -> str:
    """First line of a GateFailure: failed, or inconclusive (which fails by default).

    ``cycle`` None: the verdict of an A/B pair (candidate against reference), not an item's.
    """
    missing = _missing(verdict)
    if cycle is None:
        point_id, where = f"A/B pair {point_id}", "candidate against reference"
    else:
        where = f"cycle {cycle}"
    if verdict.status == "inconclusive" and missing:
        return (
            f"regression gate inconclusive for {point_id} ({where}): the gate decides a "
            f"config on all its cycles, and {len(missing)} of them will have no sample "
            "(--llem-inconclusive is fail):"
        )
    if verdict.status == "inconclusive":
        return (
            f"regression gate inconclusive for {point_id} ({where}): the data cannot "
            "tell whether the change is within the limit, and --llem-inconclusive is fail:"
        )
    return f"regression gate failed for {point_id} ({where}){quality.headline_words(verdict)}:"


def summary(point_id: str, cycle: int, verdict: Verdict) -> str:
    """The verdict in one line: which limits decided it, by how much, and why."""
    word = "failed" if verdict.status == "fail" else verdict.status
    deciding = [c for c in verdict.comparisons if c.status == verdict.status]
    parts = []
    for c in deciding[:3]:
        if c.missing_cycles:
            parts.append(f"{c.metric}: {c.note}")
            continue
        delta = f" {c.delta_pct:+.1f}%" if c.delta_pct is not None else ""
        why = f": {c.note}" if c.note else ""
        parts.append(f"{c.metric}{delta} against {c.limit}{why}")
    return f"regression gate {word} for {point_id} (cycle {cycle}): " + "; ".join(parts)


def fix(verdict: Verdict) -> str:
    """What to do about a failed or inconclusive verdict."""
    answers = quality.fix_words(verdict)
    if answers is not None:
        return answers
    if verdict.status == "inconclusive" and _missing(verdict):
        return (
            "run every cycle of the config in one session (select all of them, or none: -k "
            "and --lf can leave some out), and fix what stopped the others; "
            "--llem-inconclusive warn reports this without failing it"
        )
    if verdict.status == "inconclusive" and any(
        c.kind == "paired" for c in verdict.comparisons if c.status == "inconclusive"
    ):
        unsure = [c for c in verdict.comparisons if c.status == "inconclusive"]
        needed = max((c.cycles_needed or 0) for c in unsure)
        more = (
            f"run more pairs (execution.n_cycles: {needed})"
            if 0 < needed <= MAX_CYCLES
            else "run on a quieter machine (at this noise no practical number of pairs decides it)"
        )
        return more + "; --llem-inconclusive warn reports this without failing it"
    if verdict.status == "inconclusive":
        unsure = [c for c in verdict.comparisons if c.status == "inconclusive"]
        noisy_baseline = any((c.cv_baseline or 0.0) > 2 * (c.cv_current or 0.0) for c in unsure)
        needed = max((c.cycles_needed or 0) for c in unsure)
        more = (
            f"re-run with more cycles (execution.n_cycles: {needed}, here and in the baseline)"
            if 0 < needed <= MAX_CYCLES
            else ""
        )
        quiet = "re-save the baseline on a quiet machine"
        if noisy_baseline:
            steps = [f"{quiet} (its cycles are the noisier side)", *([more] if more else [])]
        else:
            steps = [
                more
                or "re-run on a quiet machine (at this noise no practical number "
                "of cycles decides it)",
                quiet,
            ]
        return ", or ".join(steps) + "; --llem-inconclusive warn reports this without failing it"
    if not any(c.status == "fail" for c in verdict.comparisons):
        return (
            "save a baseline for this config on this hardware (--llem-save-baseline), "
            "or drop --llem-require-baseline"
        )
    return "investigate the regression; if it is intended, save a new baseline"
