"""Gate configurations that can never fail are refused before anything is measured."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_llem.gate.thresholds import Limit
from pytest_llem.stats.power import mannwhitney_min_cycles, min_mannwhitney_p
from pytest_llem.study.metrics import METRICS
from pytest_llem.study.sections import GateConfig


def problems(
    study: GateConfig, n_cycles: int, limits: Sequence[Limit], configs: int = 1
) -> list[str]:
    """Why the relative limits in force could never fail this study (empty when they can)."""
    relative = [lim for lim in limits if lim.kind == "relative"]
    if not relative:
        return []
    sig = study.significance
    alpha = sig.fail_alpha(configs * len(relative))
    names = ", ".join(lim.metric for lim in relative)
    out = []
    if n_cycles < sig.min_cycles:
        out.append(
            f"execution.n_cycles is {n_cycles} but gate.significance.min_cycles is "
            f"{sig.min_cycles}: the relative limits ({names}) can never be tested, so every "
            f"comparison is inconclusive; run at least {sig.min_cycles} cycles "
            f"(execution.n_cycles: {sig.min_cycles} in the study, or --llem-cycles "
            f"{sig.min_cycles} for every study of a run)"
        )
    elif sig.test == "mannwhitney" and min_mannwhitney_p(n_cycles, n_cycles) >= alpha:
        out.append(
            f"Mann-Whitney with {n_cycles} cycles per side cannot give p < {alpha:.3g} "
            f"(its smallest one-sided p is {min_mannwhitney_p(n_cycles, n_cycles):.3g}), so "
            f"the relative limits ({names}) can never fail; run at least "
            f"{mannwhitney_min_cycles(alpha)} cycles, or use test: welch"
        )
    for lim in relative:
        if METRICS[lim.metric].better == "higher" and lim.value >= 1.0:
            out.append(
                f"{lim.metric} limit {lim.text()} ({lim.source}): a higher-is-better metric "
                "cannot fall by 100% or more, so this limit can never fail"
            )
    return out
