"""The per-item protocol: warmup until steady -> measured window -> metrics.

The idle baseline is measured once per session elsewhere and handed in; the model is loaded
(or reused) by the runner before this starts. Each window is checked for a disturbed machine
(energy/disturbance.py); under ``validity.on_disturbed: retry`` a disturbed window is
discarded and, after a backoff, warmed up and measured again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_llem.energy import disturbance
from pytest_llem.energy.disturbance import WindowCheck, WindowWatch
from pytest_llem.energy.meter import EnergyMeter, EnergyReading
from pytest_llem.engines.engine import Completion, Engine, Request
from pytest_llem.measure import metrics, quality
from pytest_llem.measure.idle_power import Baseline, IdleReading
from pytest_llem.measure.phases import Progress, quiet
from pytest_llem.measure.stabilise import DeviceReader, stabilise
from pytest_llem.measure.validity import assess
from pytest_llem.results.records import (
    CrosscheckInfo,
    EnergyInfo,
    Measurement,
    SamplerSummary,
    ValidityWarning,
)
from pytest_llem.study.experiment import ExperimentConfig
from pytest_llem.study.measurement import ValidityConfig

Clock = Callable[[], float]


class Sampler(Protocol):
    """Power/thermal sampling alongside the window (see energy/sampler.py)."""

    def start(self) -> None:
        """Begin sampling in the background."""

    def stop(self) -> SamplerSummary:
        """Stop sampling and summarise."""

    def halt(self) -> None:
        """Stop sampling and keep nothing (the window was abandoned)."""


@dataclass
class Instruments:
    """Everything the protocol needs besides the engine and the config."""

    meter: EnergyMeter
    sampler: Sampler | None = None
    # Read between warmup batches to judge the devices steady; None where nothing reads
    # them (CPU, no NVML), and warmup then judges throughput instead.
    thermal: DeviceReader | None = None
    idle: IdleReading | None = None
    clock: Clock = time.perf_counter
    wall_clock: Clock = time.time
    progress: Progress = quiet
    device_warnings: list[ValidityWarning] = field(default_factory=list)
    # The disturbance checks around each window; None checks nothing.
    watch: WindowWatch | None = None
    # The backoff before a disturbed window is measured again (tests: no real waiting).
    sleep: Callable[[float], None] = time.sleep


def measured_window(
    engine: Engine,
    batches: list[list[Request]],
    config: ExperimentConfig,
    inst: Instruments,
) -> tuple[list[Completion], int, float, EnergyReading, SamplerSummary | None]:
    """Repeat the prompt set until the window lasts ``window.min_duration_s``.

    Energy counters update about every 100 ms, so short windows carry large edge error; the
    number of passes is recorded so that throughput stays per-token honest.
    """
    completions: list[Completion] = []
    passes = 0
    if inst.sampler is not None:
        inst.sampler.start()
    if inst.watch is not None:
        inst.watch.begin()
    inst.meter.start()
    start = inst.clock()
    target = config.window.min_duration_s
    try:
        while True:
            # Said before each pass, so that an item cut short says how far its window got.
            elapsed = inst.clock() - start
            inst.progress("measure", f"{elapsed:.1f}s of {target:g}s measured, pass {passes + 1}")
            for batch in batches:
                completions.extend(engine.generate(batch, config).completions)
            passes += 1
            elapsed = inst.clock() - start
            if elapsed >= target or passes >= config.window.max_passes:
                break
    except BaseException:
        # Abandoned mid-window (a timeout's signal, a crashed engine): the sampler's thread
        # stops and is joined here, before whoever opened NVML releases it; the meter's own
        # poller stops when the meter is closed.
        if inst.sampler is not None:
            inst.sampler.halt()
        raise
    duration = inst.clock() - start
    reading = inst.meter.stop()
    summary = inst.sampler.stop() if inst.sampler is not None else None
    return completions, passes, duration, reading, summary


def _crosscheck(reading: EnergyReading) -> CrosscheckInfo | None:
    check = reading.crosscheck
    if check is None:
        return None
    return CrosscheckInfo(
        source=check.source,
        total_j=check.total_j,
        per_device_j=dict(check.per_device_j),
        reason=check.reason,
    )


def check_window(inst: Instruments, reading: EnergyReading) -> WindowCheck:
    """The disturbance checks of the window just measured (offline or serving)."""
    if inst.watch is None:
        return WindowCheck()
    counter = inst.meter.info.method == "counter"
    edges = None
    if counter and reading.t_start_s is not None and reading.t_end_s is not None:
        edges = (reading.t_start_s, reading.t_end_s)
    return inst.watch.end(dict(reading.per_device_j) if counter else None, edges)


def _window(
    engine: Engine, batches: list[list[Request]], config: ExperimentConfig, inst: Instruments
) -> tuple[Measurement, dict[str, Any]]:
    """Warm up, measure one window, check it: the measurement and the window's figures."""
    warm, thermal = stabilise(engine, batches, config, inst.thermal, inst.clock, inst.progress)
    engine.memory()  # resets the peak so the window's peak is its own
    completions, passes, duration, reading, summary = measured_window(engine, batches, config, inst)
    check = check_window(inst, reading)
    memory = engine.memory()
    baseline = Baseline()
    if inst.idle is not None and reading.total_j is not None:
        # The idle power of exactly the devices this window measured.
        baseline = inst.idle.for_devices(
            list(reading.per_device_j), inst.wall_clock(), config.baseline.max_age_s
        )
    baseline_w = baseline.power_w
    figures = metrics.compute(completions, duration, passes, reading, memory, baseline_w)
    info = inst.meter.info
    energy = EnergyInfo(
        source=info.source,
        method=info.method,
        resolution_j=info.resolution_j,
        reason=reading.reason if reading.total_j is None else None,
        per_device_j=dict(reading.per_device_j),
        baseline_w=baseline_w,
        baseline_age_s=baseline.age_s,
        t_start_s=reading.t_start_s,
        t_end_s=reading.t_end_s,
        crosscheck=_crosscheck(reading),
    )
    warnings = assess(config, figures, energy, warm, thermal, summary, baseline)
    warnings.extend(check.warnings)
    measurement = Measurement(
        metrics=figures,
        energy=energy,
        warmup=warm,
        thermal=thermal,
        sampler=summary,
        warnings=warnings,
        # After the window, unmeasured: the outputs and the scores the quality checks need.
        quality=quality.of_window(engine, config, batches, completions, inst.progress),
    )
    return measurement, check.figures


def until_undisturbed(
    once: Callable[[], Measurement],
    validity: ValidityConfig,
    inst: Instruments,
    again: str,
) -> tuple[Measurement, list[list[ValidityWarning]]]:
    """Measure with ``once`` until the policy keeps a window (``disturbance.decide``): the
    last measurement, and the flags of each discarded one. Offline windows and serving runs
    alike; ``again`` says what happens after the backoff ("measuring again")."""
    discarded: list[list[ValidityWarning]] = []
    while True:
        measurement = once()
        decision = disturbance.decide(measurement.warnings, validity, len(discarded))
        if decision.action != "retry":
            return measurement, discarded
        discarded.append(list(decision.flags))
        labels = ", ".join(w.label() for w in decision.flags)
        inst.progress(
            "disturbed",
            f"{labels}: {again} in {decision.wait_s:g}s ({len(discarded)}/{validity.max_retries})",
        )
        inst.sleep(decision.wait_s)


def run(engine: Engine, config: ExperimentConfig, inst: Instruments) -> Measurement:
    """Run the whole protocol for one item and return what it measured.

    A window the checks find disturbed is measured again while the policy says so
    (``disturbance.decide``); the last window is returned, with a ``window_retried`` warning
    naming the discarded ones. A window still disturbed is returned flagged: the session
    fails the item (``disturbance.must_fail``) after recording what it measured.
    """
    inst.progress("prepare", "tokenising prompts")
    requests = engine.requests(config)
    batches = engine.batches(requests, config)
    at_rest: list[ValidityWarning] = []
    if inst.watch is not None:
        at_rest = inst.watch.at_rest(inst.idle.per_device_w if inst.idle is not None else {})
    history: list[dict[str, Any]] = []

    def once() -> Measurement:
        measurement, figures = _window(engine, batches, config, inst)
        flags = disturbance.disturbances(measurement.warnings, config.validity)
        history.append(
            {
                **figures,
                "flags": [w.label() for w in flags],
                "output_tokens_per_s": measurement.metrics.output_tokens_per_s,
            }
        )
        return measurement

    measurement, discarded = until_undisturbed(once, config.validity, inst, "measuring again")
    warnings = [*measurement.warnings, *at_rest, *inst.device_warnings]
    note = disturbance.retried(discarded)
    if note is not None:
        warnings.append(note)
    return measurement.model_copy(
        update={"warnings": warnings, "environment": {"windows": history}}
    )
