"""Validity warnings: machine-readable reasons to distrust a measurement.

These judge the window's own figures; whether the machine was disturbed during it (other
processes, clock events, ECC errors...) is energy/disturbance.py's.
"""

from __future__ import annotations

from pytest_llem.measure.idle_power import Baseline
from pytest_llem.results.records import (
    EnergyInfo,
    Metrics,
    SamplerSummary,
    ThermalRecord,
    ValidityWarning,
    WarmupRecord,
)
from pytest_llem.study.experiment import ExperimentConfig

# Temperature rise across the window (max - min, degC) beyond which figures drift.
THERMAL_DRIFT_C = 5.0


def assess(
    config: ExperimentConfig,
    figures: Metrics,
    energy: EnergyInfo,
    warm: WarmupRecord | None,
    thermal: ThermalRecord | None,
    sampler: SamplerSummary | None,
    baseline: Baseline,
) -> list[ValidityWarning]:
    """Every warning that applies to one measured window."""
    out: list[ValidityWarning] = []

    def add(code: str, message: str) -> None:
        out.append(ValidityWarning(code=code, message=message))

    limits = config.validity
    if figures.duration_s < limits.min_window_s:
        add(
            "short_window",
            f"window lasted {figures.duration_s:.2f}s < {limits.min_window_s:g}s: energy "
            "counters update every ~100 ms, so edge error is several percent",
        )
    if figures.requests < limits.min_samples:
        add(
            "few_samples",
            f"{figures.requests} requests < {limits.min_samples}: percentiles are coarse",
        )
    if energy.source is not None and figures.energy_j == 0.0:
        add(
            "energy_zero",
            "the energy source reported 0 J: the window is shorter than its update period",
        )
    if energy.source is not None and config.baseline.enabled:
        if baseline.power_w is None:
            add("baseline_missing", "no idle baseline: adjusted energy is unavailable")
        elif baseline.stale:
            add("baseline_stale", f"idle baseline is {baseline.age_s or 0:.0f}s old")
    if warm is not None and warm.converged is False:
        add(
            "warmup_not_converged",
            f"latency CV {warm.final_cv} above threshold after {warm.iterations} batches",
        )
    if thermal is not None and not thermal.stabilised:
        add("thermal_not_stable", f"not stable after {thermal.waited_s:.0f}s: {thermal.reason}")
    if sampler is not None:
        temps = sampler.temperature_c
        if temps and temps.get("max", 0.0) - temps.get("min", 0.0) > THERMAL_DRIFT_C:
            add(
                "thermal_drift",
                f"temperature moved {temps['max'] - temps['min']:.1f}C in the window",
            )
    # Clock events, other processes, host contention: energy/disturbance.py, per window.
    return out
