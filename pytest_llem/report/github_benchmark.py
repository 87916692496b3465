"""Export for github-action-benchmark's trend charts (``--llem-export github-benchmark=DIR``).

The action (benchmark-action/github-action-benchmark) reads its ``customSmallerIsBetter`` and
``customBiggerIsBetter`` tools' ``output-file-path`` as a JSON array of
``{name, value, unit, range?, extra?}`` and takes the better direction from the tool, not from
the entries: so one file per direction, the direction of each metric from the catalogue
(``study.metrics``). It draws one chart per ``name`` (``unit`` on the axis, ``range`` beside
the value, ``extra`` in the tooltip), matches entries across commits by ``name``, converts
between s/ms/us/ns when the unit changes, reading ``range`` as ``"± <number>"``, and refuses a
file with no entry.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pytest_llem.report.bmf import ConfigSummary, per_config
from pytest_llem.results.records import ExperimentResult, write_json_atomic
from pytest_llem.study.metrics import METRICS, Direction

FILES: dict[Direction, str] = {"lower": "smaller-is-better.json", "higher": "bigger-is-better.json"}
TOOLS: dict[Direction, str] = {"lower": "customSmallerIsBetter", "higher": "customBiggerIsBetter"}


def entries(results: Sequence[ExperimentResult]) -> dict[Direction, list[dict[str, Any]]]:
    """The action's entries, split by the catalogue's better direction, one per
    (config, measured metric); a metric no cycle measured has no entry (never a zero)."""
    out: dict[Direction, list[dict[str, Any]]] = {"lower": [], "higher": []}
    for summary in per_config(results):
        context = _context(summary)
        for metric, stats in summary.stats.items():
            info = METRICS[metric]
            entry: dict[str, Any] = {
                "name": f"{summary.name} {metric}",
                "value": stats["mean"],
                "unit": info.unit,
            }
            if stats["n"] >= 2:
                half = (stats["ci95_high"] - stats["ci95_low"]) / 2
                entry["range"] = f"± {_num(half)}"
            entry["extra"] = "\n".join([*_spread(stats, len(summary.results)), *context])
            out[info.better].append(entry)
    return out


def _spread(stats: dict[str, float], cycles: int) -> list[str]:
    """Cycles behind the value, their CV and the 95% interval (the range is its half-width)."""
    n = int(stats["n"])
    lines = [f"cycles: {n}" if n == cycles else f"cycles: {n} of {cycles} measured"]
    if n >= 2:
        lines.append(f"cv: {stats['cv'] * 100:.1f}%")
        lines.append(f"95% interval: [{_num(stats['ci95_low'])}, {_num(stats['ci95_high'])}]")
    return lines


def _context(summary: ConfigSummary) -> list[str]:
    """What the config's every entry carries: energy source, hardware, what was not measured
    and why (the reasons the results give)."""
    results = summary.results
    sources = _distinct(
        f"{r.energy.source} ({r.energy.method})" if r.energy.method else r.energy.source
        for r in results
        if r.energy is not None and r.energy.source
    )
    reasons = _distinct(r.energy.reason for r in results if r.energy is not None)
    lines = [
        f"energy: {sources}" if sources else f"energy: not measured ({reasons or 'no reason'})"
    ]
    hardware = _distinct(r.hardware for r in results)
    if hardware:
        lines.append(f"hardware: {hardware}")
    missing = [m for m in METRICS if m not in summary.stats]
    if missing:
        lines.append(f"not measured: {', '.join(missing)}")
    latency = _distinct(r.metrics.latency_note for r in results if r.metrics is not None)
    if latency:
        lines.append(f"latency: {latency}")
    return lines


def _distinct(values: Iterable[str | None]) -> str:
    """Distinct non-empty values, in first-seen order, joined."""
    return "; ".join(dict.fromkeys(v for v in values if v))


def _num(x: float) -> str:
    """Four significant figures; plain digits first, as the action's range parser needs."""
    return f"{x:.4g}" if math.isfinite(x) else str(x)


def write(results: Sequence[ExperimentResult], directory: Path) -> str:
    """Write both files into ``directory`` atomically; return the note for the terminal.

    Both are written even when one is empty, so that a file left by an earlier run is never
    uploaded as this run's: the action then fails on the empty one and says so.
    """
    found = entries(results)
    parts = []
    for direction, filename in FILES.items():
        path = directory / filename
        write_json_atomic(path, found[direction])
        count = len(found[direction])
        parts.append(f"{path} ({count} entries, tool {TOOLS[direction]})")
        if not count:
            parts[-1] += ": empty, nothing measured in this direction (the action refuses it)"
    return "github-action-benchmark: " + ", ".join(parts)
