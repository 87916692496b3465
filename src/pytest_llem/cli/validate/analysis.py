"""The validation figures, from the plugin's report and the independent probe's records (pure).

Per config: energy and J/token mean and CV across cycles. Per measured window: the plugin's
counter energy against the probe's own counter delta and its power integration over the same
window (% difference). Idle power, throttling and SM clocks; Zeus against NVML when both ran.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from pytest_llem.cli.validate.probe import ProbeRecord
from pytest_llem.energy.meter import trapezoid
from pytest_llem.stats.descriptive import cv, mean

_CYCLE = re.compile(r"-c[0-9]+$")


class WindowCheck(BaseModel):
    """One measured window: the plugin's counter energy and the independent readings."""

    point_id: str
    cycle: int
    device: str
    duration_s: float
    plugin_j: float | None
    probe_counter_j: float | None
    probe_power_j: float | None
    probe_samples: int
    counter_diff_pct: float | None
    power_diff_pct: float | None


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
    zeus_j_per_token_mean: float | None = None
    zeus_vs_nvml_pct: float | None = None


class ValidationReport(BaseModel):
    """Everything the kit prints and writes."""

    machine: dict[str, Any] = Field(default_factory=dict)
    idle_power_w_probe: dict[str, float] = Field(default_factory=dict)
    idle_power_w_plugin: float | None = None
    configs: list[ConfigFigures] = Field(default_factory=list)
    windows: list[WindowCheck] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


def _pct(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return 100.0 * (value - reference) / reference


def _cv_pct(values: Sequence[float]) -> float | None:
    return 100.0 * cv(values) if len(values) >= 2 and mean(values) else None


def window_edges(item: dict[str, Any]) -> tuple[float, float] | None:
    """The plugin's measured window on the shared monotonic clock.

    The plugin's sampler takes its first sample just before the meter's opening read, and the
    window lasts the measured duration from there (its closing sample comes after a thread
    join, so the end is taken from the duration, not from the last sample).
    """
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


def _interp(points: list[tuple[float, float]], t: float) -> float | None:
    """Linear interpolation of (t, value) points at t; None outside them."""
    for (t0, v0), (t1, v1) in itertools.pairwise(points):
        if t0 <= t <= t1:
            return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return None


def probe_window(
    records: list[ProbeRecord], t0: float, t1: float
) -> tuple[float | None, float | None, int]:
    """(counter delta J, power integral J, samples inside) of one device over [t0, t1]."""
    energy = [(r.t, r.energy_mj / 1000.0) for r in records if r.energy_mj is not None]
    power = [(r.t, r.power_w) for r in records if r.power_w is not None]
    start, end = _interp(energy, t0), _interp(energy, t1)
    counter = end - start if start is not None and end is not None else None
    inside = [(t, w) for t, w in power if t0 < t < t1]
    p0, p1 = _interp(power, t0), _interp(power, t1)
    integral = None
    if p0 is not None and p1 is not None:
        series = [(t0, p0), *inside, (t1, p1)]
        integral = trapezoid([t for t, _ in series], [w for _, w in series])
    return counter, integral, len(inside)


def check_windows(items: list[dict[str, Any]], records: list[ProbeRecord]) -> list[WindowCheck]:
    """One check per (item, GPU) whose window edges are known."""
    by_device: dict[str, list[ProbeRecord]] = {}
    for record in sorted(records, key=lambda r: r.t):
        by_device.setdefault(record.device, []).append(record)
    checks = []
    for item in items:
        edges = window_edges(item)
        if edges is None:
            continue
        per_device = (item.get("energy") or {}).get("per_device_j") or {}
        for device, plugin_j in per_device.items():
            counter, integral, samples = probe_window(by_device.get(device, []), *edges)
            checks.append(
                WindowCheck(
                    point_id=item["point_id"],
                    cycle=item["cycle"],
                    device=device,
                    duration_s=edges[1] - edges[0],
                    plugin_j=plugin_j,
                    probe_counter_j=counter,
                    probe_power_j=integral,
                    probe_samples=samples,
                    counter_diff_pct=_pct(plugin_j, counter),
                    power_diff_pct=_pct(plugin_j, integral),
                )
            )
    return checks


def config_figures(
    items: list[dict[str, Any]], records: list[ProbeRecord], zeus_items: list[dict[str, Any]]
) -> list[ConfigFigures]:
    """Per config (point id without the cycle): CV of energy and J/token across cycles."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        if item.get("metrics"):
            groups.setdefault(_CYCLE.sub("", item["point_id"]), []).append(item)
    zeus: dict[str, list[float]] = {}
    for item in zeus_items:
        value = (item.get("metrics") or {}).get("energy_per_output_token_j")
        if value is not None:
            zeus.setdefault(_CYCLE.sub("", item["point_id"]), []).append(value)
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
        zeus_jpt = mean(zeus[config]) if zeus.get(config) else None
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
                zeus_j_per_token_mean=zeus_jpt,
                zeus_vs_nvml_pct=_pct(zeus_jpt, mean(jpt) if jpt else None),
            )
        )
    return out


def idle_power(records: list[ProbeRecord], before_t: float) -> dict[str, float]:
    """Mean probe power per GPU before the study started."""
    out: dict[str, list[float]] = {}
    for r in records:
        if r.t < before_t and r.power_w is not None:
            out.setdefault(r.device, []).append(r.power_w)
    return {device: mean(values) for device, values in out.items()}
