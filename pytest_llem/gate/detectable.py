"""What a comparison can detect before anything runs: for each gated metric of a config, the
smallest relative change its cycles can show (the gate's alpha, 80% power, the baseline's own
cycle-to-cycle noise), and, where a limit is finer than that, the cycles that would decide it.

Computed on the log scale the gate tests (a ratio), from the baseline entry's per-cycle
samples; the current run is assumed as noisy as the baseline was, and unchanged. The cycles
come from the same formula an inconclusive verdict uses (``decide.cycles_to_decide``), which
then has the observed change and noise instead of these assumptions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_llem.gate.decide import cycles_to_decide, log_bound
from pytest_llem.gate.thresholds import Limit
from pytest_llem.stats.descriptive import stdev
from pytest_llem.stats.power import MAX_CYCLES, min_detectable_change
from pytest_llem.study.metrics import METRICS
from pytest_llem.study.sections import SignificanceConfig


@dataclass(frozen=True)
class Detectable:
    """One gated metric of one config: what its cycles can resolve against the limit."""

    metric: str
    limit: float  # the relative limit, a fraction
    min_detectable_change: float | None  # a fraction; None when the baseline cannot say
    cycles_to_decide: int | None  # per side, when the limit is finer than that; else None
    reason: str = ""

    def text(self) -> str:
        """``output_tokens_per_s: detects 4.1% (limit 5%)`` or why not."""
        if self.min_detectable_change is None:
            return f"{self.metric}: {self.reason}"
        mdc = f"{self.min_detectable_change * 100:.1f}%"
        out = f"{self.metric}: detects {mdc} (limit {self.limit * 100:g}%)"
        if self.cycles_to_decide is not None:
            more = (
                f"more than {MAX_CYCLES}"
                if self.cycles_to_decide > MAX_CYCLES
                else f"about {self.cycles_to_decide}"
            )
            out += (
                f"; the limit is finer: {more} cycles per side would decide it if nothing "
                "changed (at the baseline's noise)"
            )
        return out


def detectable(
    samples: Mapping[str, Sequence[float]],
    limits: Sequence[Limit],
    n_cycles: int,
    sig: SignificanceConfig,
    tests: int = 1,
) -> list[Detectable]:
    """Per relative limit: the smallest detectable change with ``n_cycles`` per side."""
    out = []
    alpha = sig.fail_alpha(tests)
    for lim in limits:
        if lim.kind != "relative":
            continue
        values = [v for v in samples.get(lim.metric, []) if v > 0]
        if len(values) < 2:
            reason = "the baseline has no figure for it" if not values else "one baseline cycle"
            out.append(Detectable(lim.metric, lim.value, None, None, reason))
            continue
        sd = stdev([math.log(v) for v in values])
        change = min_detectable_change(sd, n_cycles, alpha)
        if change is None:
            out.append(Detectable(lim.metric, lim.value, None, None, "fewer than 2 cycles"))
            continue
        mdc = math.exp(change) - 1.0
        need = None
        if mdc > lim.value:
            bound = log_bound(lim.value, METRICS[lim.metric].better)
            need = cycles_to_decide(-bound, sd, sd, sig, tests)  # no change: within, by bound
        out.append(Detectable(lim.metric, lim.value, mdc, need))
    return out
