"""Gate limits: relative regressions against a baseline, and absolute budgets.

One syntax for the command line and ini (``--llem-fail-on``), comma-separated:

- ``METRIC>5%``   fail when METRIC is more than 5% worse than its baseline (the direction of
                  "worse" is the metric's: more joules, fewer tokens/s);
- ``METRIC<2.0``  a ceiling: fail when METRIC is above 2.0 (for lower-is-better metrics);
- ``METRIC>50``   a floor: fail when METRIC is below 50 (for higher-is-better metrics).

The study's ``gate:`` block says the same with ``max_regression: {METRIC: 5%}`` and
``budgets: {METRIC: 2.0}`` (a budget is a ceiling or a floor by the metric's direction).
Command line beats ini beats study, per metric and per kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pytest_llem.study.metrics import METRICS, MetricInfo
from pytest_llem.study.sections import GateConfig, parse_limit

Kind = Literal["relative", "ceiling", "floor"]
_TERM = re.compile(r"^\s*([A-Za-z0-9_]+)\s*([<>])\s*([0-9.eE+-]+)\s*(%?)\s*$")


class LimitSyntaxError(ValueError):
    """A --llem-fail-on/ini term that does not parse; names the bad part."""


@dataclass(frozen=True)
class Limit:
    """One limit on one metric."""

    metric: str
    kind: Kind
    value: float  # a fraction for relative limits (0.05), a metric value otherwise
    source: str

    def text(self) -> str:
        """Human form: ``+5%``, ``<= 2.0``, ``>= 50``."""
        if self.kind == "relative":
            return f"{self.value * 100:g}% worse"
        return f"<= {self.value:g}" if self.kind == "ceiling" else f">= {self.value:g}"


def _info(metric: str, where: str) -> MetricInfo:
    info = METRICS.get(metric)
    if info is None:
        import difflib

        close = difflib.get_close_matches(metric, list(METRICS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known: {sorted(METRICS)}"
        raise LimitSyntaxError(f"{where}: unknown metric {metric!r}{hint}")
    return info


def parse_fail_on(text: str, source: str = "cli") -> list[Limit]:
    """Parse ``energy_per_output_token_j>5%,latency_p99_s<2.0``.

    Raises:
        LimitSyntaxError: naming the bad term and the expected form.
    """
    limits: list[Limit] = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        match = _TERM.match(term)
        if match is None:
            raise LimitSyntaxError(
                f"bad limit {term!r}: expected METRIC>N% (relative), METRIC<V (ceiling) or "
                "METRIC>V (floor), e.g. energy_per_output_token_j>5%"
            )
        metric, op, number, percent = match.groups()
        info = _info(metric, f"bad limit {term!r}")
        try:
            value = float(number)
        except ValueError:
            raise LimitSyntaxError(f"bad limit {term!r}: {number!r} is not a number") from None
        if percent:
            if op != ">":
                raise LimitSyntaxError(
                    f"bad limit {term!r}: a relative limit reads METRIC>N% ('more than N% worse')"
                )
            limits.append(Limit(metric, "relative", value / 100.0, source))
            continue
        kind: Kind = "ceiling" if op == "<" else "floor"
        if (kind == "ceiling") != (info.better == "lower"):
            better = "lower" if info.better == "lower" else "higher"
            raise LimitSyntaxError(
                f"bad limit {term!r}: {metric} is {better}-is-better, so its budget is "
                f"{metric}{'<' if better == 'lower' else '>'}V"
            )
        limits.append(Limit(metric, kind, value, source))
    return limits


def from_study(gate: GateConfig) -> list[Limit]:
    """Limits of a study's ``gate:`` block."""
    limits = []
    for metric, raw in gate.max_regression.items():
        amount, relative = parse_limit(raw)
        if not relative:
            raise LimitSyntaxError(f"gate.max_regression.{metric}: write a percentage, e.g. '5%'")
        limits.append(Limit(metric, "relative", amount, "study"))
    for metric, value in gate.budgets.items():
        kind: Kind = "ceiling" if METRICS[metric].better == "lower" else "floor"
        limits.append(Limit(metric, kind, float(value), "study"))
    return limits


def combine(*layers: list[Limit]) -> list[Limit]:
    """Merge limit layers, earlier layers winning per (metric, relative-or-budget)."""
    chosen: dict[tuple[str, bool], Limit] = {}
    for layer in layers:
        for limit in layer:
            chosen.setdefault((limit.metric, limit.kind == "relative"), limit)
    return sorted(chosen.values(), key=lambda lim: (lim.metric, lim.kind))
