"""Same-session A/B verdicts: a relative limit judged on paired cycles (pure).

In each cycle both arms of a config ran back to back; the log ratio candidate / reference of a
metric is one observation per cycle, and the drift between cycles (another day, another
thermal state, a tenant on the machine) cancels within each pair. Two one-sided tests against
the limit on those log ratios (``stats/paired.py``) give pass, fail or inconclusive; an
incomplete pair is never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pytest_llem.gate.completeness import describe
from pytest_llem.gate.thresholds import Limit
from pytest_llem.gate.verdict import Comparison, center
from pytest_llem.stats.paired import paired, pairs_needed
from pytest_llem.study.metrics import METRICS
from pytest_llem.study.sections import SignificanceConfig


def _base(limit: Limit) -> Comparison:
    return Comparison(
        metric=limit.metric, limit=limit.text(), kind="paired", status="not_evaluated"
    )


def paired_comparison(
    limit: Limit,
    reference: Sequence[float],
    candidate: Sequence[float],
    final: bool,
    sig: SignificanceConfig,
    missing: Mapping[int, str],
    tests: int = 1,
) -> Comparison:
    """One relative limit on the pairs (``reference[i]`` and ``candidate[i]`` ran together)."""
    base = _base(limit)
    pairs = [(r, c) for r, c in zip(reference, candidate, strict=True)]
    # The arms' geometric means: the ratio the test judges is theirs (the mean log ratio).
    means = {
        "baseline": center(reference) if reference else None,
        "current": center(candidate) if candidate else None,
        "n_current": len(candidate),
        "n_baseline": len(reference),
    }
    if not pairs and not missing and final:
        return base.model_copy(update={"note": "no value measured", **means})
    if missing:
        return base.model_copy(
            update={
                "status": "inconclusive",
                "note": f"not decided on all pairs: {describe(missing)}",
                "missing_cycles": dict(missing),
                **means,
            }
        )
    if not final:
        return base.model_copy(
            update={"status": "pending", "note": "decided at the last pair", **means}
        )
    if any(r <= 0 or c <= 0 for r, c in pairs):
        return base.model_copy(update={"note": "a ratio needs positive values on both arms"})
    logs = [math.log(c / r) for r, c in pairs]
    if len(logs) < sig.min_cycles:
        return base.model_copy(
            update={
                "status": "inconclusive",
                "note": f"too few pairs to test (n={len(logs)} < {sig.min_cycles})",
                "cycles_needed": sig.min_cycles,
                **means,
            }
        )
    sign = 1.0 if METRICS[limit.metric].better == "lower" else -1.0
    bound = math.log1p(limit.value) if sign > 0 else -math.log1p(-min(limit.value, 0.999))
    fail_alpha = sig.fail_alpha(tests)
    result = paired(logs, bound, sign, sig.alpha, fail_alpha, sig.paired_test)
    distance = sign * math.log(result.ratio) - bound  # > 0: beyond the limit
    side = "beyond" if distance > 0 else "within"
    if result.p_beyond < fail_alpha:
        status, side, p = "fail", "beyond", result.p_beyond
        reason = (
            f"paired {result.test} p={p:.3g} < {fail_alpha:.3g}: the candidate is "
            "significantly beyond the limit"
        )
    elif result.p_within < sig.alpha:
        status, side, p = "pass", "within", result.p_within
        reason = (
            f"paired {result.test} p={p:.3g} < {sig.alpha:g}: the candidate is significantly "
            "within the limit"
        )
    else:
        status = "inconclusive"
        p = result.p_beyond if side == "beyond" else result.p_within
        reason = f"{side} the limit but not significantly: paired {result.test} p={p:.3g}"
    needed = None
    if status == "inconclusive" and result.pairs_cv is not None:
        # The test that would decide it: "beyond" at the corrected level, "within" at alpha.
        level = fail_alpha if side == "beyond" else sig.alpha
        needed = pairs_needed(abs(distance), result.pairs_cv, level)
    return base.model_copy(
        update={
            "status": status,
            "note": reason,
            **means,
            "delta_pct": (result.ratio - 1.0) * 100.0,
            "p_value": p,
            "p_side": side,
            "ci": result.ratio_ci,
            "ratio": result.ratio,
            "pairs_cv": result.pairs_cv,
            "min_detectable_change": result.min_detectable_change,
            "test": result.test,
            "cycles_needed": needed,
        }
    )
