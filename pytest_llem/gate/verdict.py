"""Per-item verdicts: every limit checked against this item (budgets) or its config's cycles
against the baseline's (relative limits: pass, fail or inconclusive, see gate/decide.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from pytest_llem.gate.completeness import describe
from pytest_llem.gate.decide import decide
from pytest_llem.gate.quality_figures import QUALITY_METRICS, Agreement
from pytest_llem.gate.thresholds import Limit
from pytest_llem.stats.descriptive import mean
from pytest_llem.stats.power import MAX_CYCLES
from pytest_llem.study.metrics import METRICS
from pytest_llem.study.sections import SignificanceConfig

Status = Literal["pass", "fail", "inconclusive", "not_evaluated", "pending"]
VerdictStatus = Literal["pass", "fail", "inconclusive", "pending", "no_baseline", "not_evaluated"]
Policy = Literal["fail", "warn"]
ENERGY_METRICS = frozenset(m for m in METRICS if "energy" in m or m == "avg_power_w")


class Comparison(BaseModel):
    """One limit checked on one metric."""

    metric: str
    limit: str
    kind: str
    status: Status
    baseline: float | None = None
    current: float | None = None
    # Relative and paired limits: ``baseline`` and ``current`` are geometric means (the
    # reference and candidate arms for paired ones), ``ratio`` is current / baseline,
    # ``delta_pct`` is (ratio - 1) in percent and ``ci`` the ratio's interval: the inversion of
    # the tests, so it lies beyond the limit exactly when the verdict is fail.
    delta_pct: float | None = None  # signed as measured
    # The one p-value the verdict rests on, and the hypothesis it tested: "beyond" (the
    # change is beyond the limit) or "within".
    p_value: float | None = None
    p_side: str | None = None
    ci: tuple[float, float] | None = None
    n_current: int = 0
    n_baseline: int = 0
    cv_current: float | None = None  # cycle-to-cycle noise of each side (stdev / mean)
    cv_baseline: float | None = None
    cycles_needed: int | None = None  # inconclusive: cycles per side that would decide it
    # Cycles without a sample and why: a config is decided on all its cycles or not at all.
    missing_cycles: dict[int, str] = Field(default_factory=dict)
    # Paired (A/B) comparisons also carry the spread of the pairs' log ratios, what these
    # pairs can detect, and the test.
    ratio: float | None = None
    pairs_cv: float | None = None
    min_detectable_change: float | None = None
    test: str | None = None
    # token_agreement (gate/quality.py): how many prompts agree, and where the first diverged.
    agreement: Agreement | None = None
    note: str = ""


class Verdict(BaseModel):
    """The gate's decision for one item."""

    status: VerdictStatus
    comparisons: list[Comparison] = Field(default_factory=list)
    baseline: str | None = None
    # found, other_hardware, other_config (the study changed) or absent; None: no baseline
    baseline_match: str | None = None
    note: str = ""
    inconclusive: Policy = "fail"  # what an inconclusive verdict does to the item

    @property
    def failed(self) -> bool:
        """True when the verdict fails (inconclusive too, unless the policy is warn)."""
        return self.status == "fail" or (
            self.status == "inconclusive" and self.inconclusive == "fail"
        )

    @property
    def paired(self) -> bool:
        """An A/B verdict: some limit is judged on the pairs of both arms."""
        return any(c.kind == "paired" for c in self.comparisons)

    def split(self) -> tuple[Verdict, Verdict | None]:
        """(what judges the item itself, what judges its A/B pair).

        An arm's item fails only for its own limits (budgets on its own value); the pair's
        paired limits are the pair's verdict, reported as the pair (``<pair>[ab]``), never as
        if one arm failed. A verdict that is not paired is the item's own, whole.
        """
        if not self.paired:
            return self, None
        own = [c for c in self.comparisons if c.kind != "paired"]
        pair = [c for c in self.comparisons if c.kind == "paired"]
        mine = self.model_copy(update={"comparisons": own, "status": status_of(own)})
        theirs = self.model_copy(update={"comparisons": pair, "status": status_of(pair)})
        return mine, theirs


def center(values: Sequence[float]) -> float:
    """The mean a ratio limit compares: geometric for positive values, else arithmetic."""
    if values and min(values) > 0:
        return math.exp(mean([math.log(v) for v in values]))
    return mean(values)


def budget(limit: Limit, value: float | None) -> Comparison:
    """A budget (a ceiling or a floor) checked on one item's value."""
    if value is None:
        return Comparison(
            metric=limit.metric,
            limit=limit.text(),
            kind=limit.kind,
            status="not_evaluated",
            note="no value measured",
        )
    over = value > limit.value if limit.kind == "ceiling" else value < limit.value
    return Comparison(
        metric=limit.metric,
        limit=limit.text(),
        kind=limit.kind,
        status="fail" if over else "pass",
        current=value,
        n_current=1,
    )


def _incomplete(
    base: Comparison,
    current: Sequence[float],
    baseline: Sequence[float],
    missing: Mapping[int, str],
) -> Comparison:
    """Inconclusive: cycles are missing, whatever the cycles that ran say."""
    cur_mean = center(current) if current else None
    base_mean = center(baseline)
    delta = (cur_mean - base_mean) / abs(base_mean) * 100.0 if cur_mean and base_mean else None
    return base.model_copy(
        update={
            "status": "inconclusive",
            "note": f"not decided on part of the cycles: {describe(missing)}",
            "baseline": base_mean,
            "current": cur_mean,
            "delta_pct": delta,
            "n_current": len(current),
            "n_baseline": len(baseline),
            "missing_cycles": dict(missing),
        }
    )


def _relative(
    limit: Limit,
    current: Sequence[float],
    baseline: Sequence[float] | None,
    final: bool,
    sig: SignificanceConfig,
    missing: Mapping[int, str],
    tests: int = 1,
) -> Comparison:
    base = Comparison(
        metric=limit.metric, limit=limit.text(), kind=limit.kind, status="not_evaluated"
    )
    if baseline is None or not baseline:
        return base.model_copy(update={"note": "no baseline value"})
    if missing:
        return _incomplete(base, current, baseline, missing)
    if not current:
        return base.model_copy(update={"note": "no value measured", "n_baseline": len(baseline)})
    if not final:
        return base.model_copy(update={"status": "pending", "note": "decided at the last cycle"})
    decision = decide(current, baseline, limit.value, METRICS[limit.metric].better, sig, tests)
    cur, base_value = decision.geomean_current, decision.geomean_baseline
    delta: float | None = None
    if decision.ratio is not None:
        delta = (decision.ratio - 1.0) * 100.0
    elif cur is not None and base_value:
        delta = (cur - base_value) / abs(base_value) * 100.0
    return Comparison(
        metric=limit.metric,
        limit=limit.text(),
        kind=limit.kind,
        status=decision.outcome,
        note=decision.reason,
        baseline=base_value,
        current=cur,
        delta_pct=delta,
        n_current=len(current),
        n_baseline=len(baseline),
        ci=decision.ratio_ci,
        ratio=decision.ratio,
        p_value=decision.p_value,
        p_side=decision.side,
        cv_current=decision.cv_current,
        cv_baseline=decision.cv_baseline,
        cycles_needed=decision.cycles_needed,
    )


def evaluate(
    limits: Sequence[Limit],
    value: Mapping[str, float | None],
    samples: Mapping[str, Sequence[float]],
    baseline: Mapping[str, Sequence[float]] | None,
    final: bool,
    sig: SignificanceConfig,
    require_energy: bool = False,
    require_baseline: bool = False,
    baseline_note: str = "",
    inconclusive: Policy = "fail",
    missing: Mapping[int, str] | None = None,
    tests: int = 1,
) -> Verdict:
    """Check every limit; the item fails when any limit fails (or a required one is missing).

    ``missing``: cycles of the config that have (or will have) no sample, with the reasons;
    relative limits are then inconclusive, never decided on part of the cycles. ``tests``:
    the study's number of relative tests (the family-wise correction's denominator).
    """
    comparisons = []
    for limit in limits:
        if limit.kind == "relative":
            base = baseline.get(limit.metric) if baseline is not None else None
            comparisons.append(
                _relative(
                    limit, samples.get(limit.metric, []), base, final, sig, missing or {}, tests
                )
            )
        else:
            comparisons.append(budget(limit, value.get(limit.metric)))
    require_energy_of(comparisons, require_energy, baseline is not None)
    has_relative = any(lim.kind == "relative" for lim in limits)
    status = status_of(comparisons, has_relative and baseline is None, require_baseline)
    return Verdict(
        status=status, comparisons=comparisons, note=baseline_note, inconclusive=inconclusive
    )


def require_energy_of(
    comparisons: Sequence[Comparison], require_energy: bool, has_baseline: bool
) -> None:
    """Under ``--llem-require-energy``, a gated energy metric that could not be compared
    (none measured, or none in the baseline) fails, saying which side lacks it."""
    for comp in comparisons:
        lacking = comp.note == "no value measured" or (
            has_baseline and comp.note == "no baseline value"
        )
        gated_energy = comp.status == "not_evaluated" and comp.metric in ENERGY_METRICS
        if gated_energy and require_energy and lacking:
            side = (
                "no energy measured"
                if comp.note == "no value measured"
                else "the baseline has no energy figure for this config"
            )
            comp.status = "fail"
            comp.note = f"{side} and --llem-require-energy is set"


def status_of(
    comparisons: Sequence[Comparison], no_baseline: bool = False, require_baseline: bool = False
) -> VerdictStatus:
    """An item's verdict from its comparisons: any fail fails, then inconclusive, then pending
    (nothing relative is decided before the last cycle, and pending is not pass)."""
    if any(c.status == "fail" for c in comparisons):
        return "fail"
    if any(c.status == "inconclusive" for c in comparisons):
        return "inconclusive"
    if any(c.status == "pending" for c in comparisons):
        return "pending"
    if no_baseline:
        return "fail" if require_baseline else "no_baseline"
    if comparisons and all(c.status == "not_evaluated" for c in comparisons):
        return "not_evaluated"
    return "pass"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def cycles_text(needed: int | None, unit: str = "cycles per side") -> str:
    """``about 12 cycles per side`` (or why no number can be given)."""
    if needed is None:
        return f"no number of {unit.split()[0]} decides a change that sits on the limit"
    if needed > MAX_CYCLES:
        return f"more than {MAX_CYCLES} {unit}"
    return f"about {needed} {unit}"


def inconclusive_line(comp: Comparison) -> str:
    """Why one limit could not be decided: the noise on each side and the cycles needed."""
    delta = f"{comp.delta_pct:+.1f}%" if comp.delta_pct is not None else "the change"
    if comp.metric in QUALITY_METRICS:
        return f"{comp.metric} (limit {comp.limit}) is inconclusive: {comp.note}"
    if comp.missing_cycles:
        return (
            f"{comp.metric}: {delta} against a limit of {comp.limit} is inconclusive: {comp.note}"
        )
    if comp.kind == "paired":
        needed = cycles_text(comp.cycles_needed, "pairs")
        return (
            f"{comp.metric}: candidate / reference {_ratio(comp.ratio)} against a limit of "
            f"{comp.limit} is inconclusive ({comp.note}); the pairs' ratios vary by "
            f"{_pct(comp.pairs_cv)} (n={comp.n_current} pairs); {needed} would decide a ratio "
            "of this size at this noise"
        )
    return (
        f"{comp.metric}: {delta} against a limit of {comp.limit} is inconclusive "
        f"({comp.note}); cycles vary by {_pct(comp.cv_current)} here (n={comp.n_current}) and "
        f"{_pct(comp.cv_baseline)} in the baseline (n={comp.n_baseline}); "
        f"{cycles_text(comp.cycles_needed)} would decide a change of this size at this noise "
        "(the plan's figure assumes no change)"
    )


def details(verdict: Verdict) -> list[str]:
    """One line per inconclusive limit."""
    return [inconclusive_line(c) for c in verdict.comparisons if c.status == "inconclusive"]


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _change(value: float | None) -> str:
    return "-" if value is None else f"{(value - 1.0) * 100:+.1f}%"


def _evidence(c: Comparison, paired: bool) -> tuple[str, str]:
    """(the change or ratio with its interval, the p-value with the hypothesis it tested)."""
    show = _ratio if paired else _change
    if c.ratio is not None:
        value = show(c.ratio)
    elif c.delta_pct is not None:
        value = f"{c.delta_pct:+.1f}%"
    else:
        value = "-"
    if c.ci is not None:
        value += f" [{show(c.ci[0])}, {show(c.ci[1])}]"
    p = f"{c.p_value:.3g} ({c.p_side})" if c.p_value is not None and c.p_side else "-"
    return value, p


def table(verdict: Verdict) -> str:
    """The failure text, one row per limit, in one unit per column.

    Against a baseline: its geometric mean, the current one, the change in percent with its
    interval. A/B: the reference and candidate arms' geometric means and the ratio candidate /
    reference with its interval. Either way one p-value: the one the verdict rests on.
    """
    paired = any(c.kind == "paired" for c in verdict.comparisons)
    head = (
        ("metric", "reference", "candidate", "ratio [interval]", "p", "limit", "status")
        if paired
        else ("metric", "baseline", "current", "change [interval]", "p", "limit", "status")
    )
    rows = []
    for c in verdict.comparisons:
        change, p = _evidence(c, paired)
        rows.append(
            (
                c.metric,
                _fmt(c.baseline),
                _fmt(c.current),
                change,
                p,
                c.limit,
                c.status + (f" ({c.note})" if c.note else ""),
            )
        )
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)).rstrip()]
    lines += ["  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    if verdict.note:
        lines.append(verdict.note)
    lines += details(verdict)
    return "\n".join(lines)
