"""The validation figures, from the plugin's report and the independent probe's records (pure).

Per measured window: the plugin's counter energy against the independent process's
integration of instant power over the same timestamps (% difference), and Zeus read over the
same window beside NVML when it ran. Per config: energy and J/token mean and CV across cycles.
Per GPU: how often the energy counter moves (its update period). Per item: the validity
flags the plugin gave it (a window on a disturbed machine validates nothing, and fails the
kit). Then the verdict: every figure inside its tolerance, or the kit exits 1.
"""

from __future__ import annotations

import itertools
import json
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from pytest_llem.cli.validate.probe import ProbeRecord
from pytest_llem.energy.meter import trapezoid
from pytest_llem.results.records import ValidityWarning
from pytest_llem.stats.descriptive import cv, mean
from pytest_llem.study.measurement import DISTURBANCE_CODES

_CYCLE = re.compile(r"-c[0-9]+$")


class Tolerances(BaseModel):
    """Pass/fail limits. The defaults hold for windows of 10 s or more (the kit's default):
    2% between the plugin's window energy and an independent power integration, 1% energy
    CV across cycles; shorter windows carry the counter's ~100 ms steps at their edges."""

    window_diff_pct: float = 2.0
    cv_pct: float = 1.0
    zeus_diff_pct: float = 2.0


class WindowCheck(BaseModel):
    """One measured window on one GPU: the plugin's energy and the independent readings."""

    point_id: str
    cycle: int
    device: str
    duration_s: float
    edges: str  # "meter": the meter's own read times; "sampler": inferred from the timeseries
    plugin_j: float | None
    probe_power_j: float | None
    probe_samples: int
    power_diff_pct: float | None
    zeus_j: float | None = None
    zeus_diff_pct: float | None = None


class ConfigFigures(BaseModel):
    """Cycle-to-cycle variation of one config."""

    config: str
    cycles: int
    energy_j_mean: float | None
    energy_cv_pct: float | None
    j_per_token_mean: float | None
    j_per_token_cv_pct: float | None
    tokens_per_s_mean: float
    throttle_s: float
    sm_clock_mhz_mean: float | None


class CounterPeriod(BaseModel):
    """How often one GPU's energy counter moved while the probe polled it."""

    device: str
    polls: int
    changes: int
    period_ms: float | None
    every_poll: bool  # it moved at (almost) every poll: the period is the poll interval or less


class ItemFlags(BaseModel):
    """The validity flags the plugin gave one item (energy/disturbance.py and the rest)."""

    point_id: str
    cycle: int
    outcome: str
    flags: list[str]  # ``code brief`` labels, e.g. "host_contention 61% of 2 cores"
    messages: list[str]
    disturbed: bool  # a flag of validity.disturbed_by: the window says nothing of the config


class ValidationReport(BaseModel):
    """Everything the kit prints and writes."""

    machine: dict[str, Any] = Field(default_factory=dict)
    tolerances: Tolerances = Tolerances()
    power_sources: dict[str, str] = Field(default_factory=dict)
    counter_periods: list[CounterPeriod] = Field(default_factory=list)
    idle_power_w_probe: dict[str, float] = Field(default_factory=dict)
    idle_power_w_plugin: float | None = None
    configs: list[ConfigFigures] = Field(default_factory=list)
    windows: list[WindowCheck] = Field(default_factory=list)
    flags: list[ItemFlags] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    failures: list[str] = Field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check is inside its tolerance."""
        return not self.failures


def _pct(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return 100.0 * (value - reference) / reference


def _cv_pct(values: Sequence[float]) -> float | None:
    return 100.0 * cv(values) if len(values) >= 2 and mean(values) else None


def _sampler_edges(item: dict[str, Any]) -> tuple[float, float] | None:
    timeseries_file = (item.get("sampler") or {}).get("timeseries_file")
    if not timeseries_file or not Path(timeseries_file).exists():
        return None
    times = [
        float(json.loads(line)["t"])
        for line in Path(timeseries_file).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    if len(times) < 2:
        return None
    first, last = min(times), max(times)
    duration = float((item.get("metrics") or {}).get("duration_s") or 0.0)
    if not 0 < duration <= last - first:
        return first, last
    return first, first + duration


def window_edges(item: dict[str, Any]) -> tuple[float, float, str] | None:
    """The plugin's measured window on the shared monotonic clock, and where it came from.

    The meter's own read times (``energy.t_start_s``/``t_end_s``) when the result has them;
    otherwise the sampler's first sample (taken just before the meter's opening read) plus
    the measured duration.
    """
    energy = item.get("energy") or {}
    t0, t1 = energy.get("t_start_s"), energy.get("t_end_s")
    if t0 is not None and t1 is not None and t1 > t0:
        return float(t0), float(t1), "meter"
    edges = _sampler_edges(item)
    return (*edges, "sampler") if edges is not None else None


def _interp(points: list[tuple[float, float]], t: float) -> float | None:
    """Linear interpolation of (t, value) points at t; None outside them."""
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return None


def probe_window(records: list[ProbeRecord], t0: float, t1: float) -> tuple[float | None, int]:
    """(power integral J, samples inside) of one device over [t0, t1]."""
    power = [(r.t, r.power_w) for r in records if r.power_w is not None]
    inside = [(t, w) for t, w in power if t0 < t < t1]
    p0, p1 = _interp(power, t0), _interp(power, t1)
    if p0 is None or p1 is None:
        return None, len(inside)
    series = [(t0, p0), *inside, (t1, p1)]
    return trapezoid([t for t, _ in series], [w for _, w in series]), len(inside)


def _by_device(records: list[ProbeRecord]) -> dict[str, list[ProbeRecord]]:
    out: dict[str, list[ProbeRecord]] = {}
    for record in sorted(records, key=lambda r: r.t):
        out.setdefault(record.device, []).append(record)
    return out


def counter_periods(records: list[ProbeRecord]) -> list[CounterPeriod]:
    """Per GPU: the median time between changes of the energy counter as the probe saw it."""
    out = []
    for device, series in _by_device(records).items():
        readings = [(r.t, r.energy_mj) for r in series if r.energy_mj is not None]
        changes = [t for (_, a), (t, b) in itertools.pairwise(readings) if b != a]
        gaps = [b - a for a, b in itertools.pairwise(changes)]
        period = 1000.0 * statistics.median(gaps) if gaps else None
        polls = max(0, len(readings) - 1)
        out.append(
            CounterPeriod(
                device=device,
                polls=polls,
                changes=len(changes),
                period_ms=period,
                every_poll=polls > 0 and len(changes) >= 0.9 * polls,
            )
        )
    return out


def check_windows(items: list[dict[str, Any]], records: list[ProbeRecord]) -> list[WindowCheck]:
    """One check per (item, GPU) whose window edges are known."""
    by_device = _by_device(records)
    checks = []
    for item in items:
        edges = window_edges(item)
        if edges is None:
            continue
        t0, t1, origin = edges
        energy = item.get("energy") or {}
        zeus = energy.get("crosscheck") or {}
        zeus_per_device = zeus.get("per_device_j") or {} if zeus.get("source") == "zeus" else {}
        for device, plugin_j in (energy.get("per_device_j") or {}).items():
            integral, samples = probe_window(by_device.get(device, []), t0, t1)
            zeus_j = zeus_per_device.get(device)
            checks.append(
                WindowCheck(
                    point_id=item["point_id"],
                    cycle=item["cycle"],
                    device=device,
                    duration_s=t1 - t0,
                    edges=origin,
                    plugin_j=plugin_j,
                    probe_power_j=integral,
                    probe_samples=samples,
                    power_diff_pct=_pct(plugin_j, integral),
                    zeus_j=zeus_j,
                    zeus_diff_pct=_pct(zeus_j, plugin_j),
                )
            )
    return checks


def item_flags(items: list[dict[str, Any]]) -> list[ItemFlags]:
    """Per item with any, the validity flags the plugin gave it, as the report holds them."""
    out = []
    for item in items:
        warnings = [ValidityWarning.model_validate(w) for w in item.get("warnings") or []]
        if not warnings:
            continue
        validity = (item.get("config") or {}).get("validity") or {}
        codes = set(validity.get("disturbed_by", DISTURBANCE_CODES))
        out.append(
            ItemFlags(
                point_id=item["point_id"],
                cycle=item["cycle"],
                outcome=item.get("outcome", ""),
                flags=[w.label() for w in warnings],
                messages=[f"{w.code}: {w.message}" for w in warnings],
                disturbed=any(w.code in codes for w in warnings),
            )
        )
    return out


def config_figures(items: list[dict[str, Any]], records: list[ProbeRecord]) -> list[ConfigFigures]:
    """Per config (point id without the cycle): CV of energy and J/token across cycles."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        if item.get("metrics"):
            groups.setdefault(_CYCLE.sub("", item["point_id"]), []).append(item)
    out = []
    for config, group in groups.items():
        metrics = [g["metrics"] for g in group]
        energy = [m["energy_j"] for m in metrics if m.get("energy_j") is not None]
        jpt = [
            m["energy_per_output_token_j"]
            for m in metrics
            if m.get("energy_per_output_token_j") is not None
        ]
        throttle = sum(
            sum(((g.get("sampler") or {}).get("throttle_s") or {}).values()) for g in group
        )
        clocks = [
            r.sm_clock_mhz
            for g in group
            if (edges := window_edges(g))
            for r in records
            if r.sm_clock_mhz is not None and edges[0] <= r.t <= edges[1]
        ]
        out.append(
            ConfigFigures(
                config=config,
                cycles=len(group),
                energy_j_mean=mean(energy) if energy else None,
                energy_cv_pct=_cv_pct(energy),
                j_per_token_mean=mean(jpt) if jpt else None,
                j_per_token_cv_pct=_cv_pct(jpt),
                tokens_per_s_mean=mean([m["output_tokens_per_s"] for m in metrics]),
                throttle_s=throttle,
                sm_clock_mhz_mean=mean(clocks) if clocks else None,
            )
        )
    return out


def _outside(value: float | None, limit: float) -> bool:
    return value is None or abs(value) > limit


def failures(report: ValidationReport) -> list[str]:
    """Every check outside its tolerance (empty: the kit passes)."""
    tol = report.tolerances
    out: list[str] = []
    if not report.windows:
        out.append("no measured window could be checked (see the notes)")
    for w in report.windows:
        name = f"{w.point_id} c{w.cycle} {w.device}"
        if w.plugin_j is None or w.probe_power_j is None:
            out.append(
                f"{name}: no figure to compare (plugin {w.plugin_j}, probe {w.probe_power_j})"
            )
        elif _outside(w.power_diff_pct, tol.window_diff_pct):
            out.append(
                f"{name}: plugin {w.plugin_j:.2f} J vs independent integration "
                f"{w.probe_power_j:.2f} J: {w.power_diff_pct:+.2f}% (limit "
                f"{tol.window_diff_pct:g}%)"
            )
        if w.zeus_j is not None and _outside(w.zeus_diff_pct, tol.zeus_diff_pct):
            out.append(
                f"{name}: Zeus {w.zeus_j:.2f} J vs NVML {w.plugin_j} J over the same window: "
                f"{w.zeus_diff_pct:+.2f}% (limit {tol.zeus_diff_pct:g}%)"
            )
    for f in report.flags:
        if f.disturbed:
            out.append(
                f"{f.point_id} c{f.cycle}: measured on a disturbed machine: " + "; ".join(f.flags)
            )
    for c in report.configs:
        if _outside(c.energy_cv_pct, tol.cv_pct):
            shown = "n/a" if c.energy_cv_pct is None else f"{c.energy_cv_pct:.2f}%"
            out.append(
                f"{c.config}: energy CV across {c.cycles} cycles {shown} (limit {tol.cv_pct:g}%)"
            )
    return out


def idle_power(records: list[ProbeRecord], before_t: float) -> dict[str, float]:
    """Mean probe power per GPU before the study started."""
    out: dict[str, list[float]] = {}
    for r in records:
        if r.t < before_t and r.power_w is not None:
            out.setdefault(r.device, []).append(r.power_w)
    return {device: mean(values) for device, values in out.items()}
