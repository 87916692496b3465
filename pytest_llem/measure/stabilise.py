"""Warmup until steady: batches run until the devices (on CPU, the throughput) are steady.

Warmup and thermal stabilisation overlap. Rather than a fixed count of warmup batches and
then a separate wait, batches continue until every GPU's power and temperature are steady
(measure/thermal.py), or, where nothing reads the devices (CPU), until batch latency is.
A GPU left hot and steady by the previous item is recognised in ``thermal.min_steady_s``;
one still heating keeps warming up until its plateau. ``warmup.n_warmup`` batches and
``thermal.min_s`` always run; ``thermal.max_s`` (and, for latency, ``warmup.max_iterations``)
bound the rest, and a warmup stopped by a bound says so in the result and its warnings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pytest_llem.engines.engine import BatchResult, Engine, Request
from pytest_llem.measure.phases import Progress
from pytest_llem.measure.thermal import Reading, judge
from pytest_llem.results.records import StabilityMethod, ThermalRecord, WarmupRecord
from pytest_llem.stats.descriptive import cv
from pytest_llem.study.experiment import ExperimentConfig

Clock = Callable[[], float]
Work = tuple[int, int]  # (requests in the batch, tokens of its longest output)


class DeviceReader(Protocol):
    """Reads each device's temperature and power (see ``thermal.ThermalReader``)."""

    interval_s: float

    def read(self) -> list[tuple[str, float | None, float | None]]:
        """(device, temperature C or None, power W or None) for every device, now."""


@dataclass
class _Run:
    """What warmup has seen so far: per batch its work and latency, and device readings."""

    latencies: list[tuple[Work, float]] = field(default_factory=list)
    readings: list[Reading] = field(default_factory=list)
    last_read_s: float = -math.inf
    final_cv: float | None = None


@dataclass(frozen=True)
class _Verdict:
    method: StabilityMethod | None  # None: keep warming up
    reason: str
    devices_steady: bool
    device_reason: str
    latency_steady: bool | None  # None: latency not judged


def work(batch: list[Request], result: BatchResult) -> Work:
    """The work a batch did, for comparing the latency of like batches only.

    A static batch decodes until its longest output ends, so batches with as many requests
    and the same longest output do about the same work whatever their prompts (which differ
    in their prefill alone). A prompt set that mixes one-token and full-length answers then
    still shows a steady throughput, where the CV over all batches never would.
    """
    return len(batch), max((c.output_tokens for c in result.completions), default=0)


def latency_cv(latencies: list[tuple[Work, float]], window: int) -> float | None:
    """CV of the last ``window`` latencies of batches like the latest one (None: too few)."""
    key = latencies[-1][0]
    like = [seconds for done, seconds in latencies if done == key][-window:]
    return cv(like) if len(like) >= window else None


def _read(run: _Run, reader: DeviceReader, now_s: float) -> None:
    # Between batches only, so every reading is of the devices under load (the tolerance
    # keeps float clocks from skipping a reading due exactly now).
    if now_s - run.last_read_s >= reader.interval_s - 1e-9:
        run.readings.extend((now_s, d, c, p) for d, c, p in reader.read())
        run.last_read_s = now_s


def _has_values(readings: list[Reading]) -> bool:
    return any(c is not None or p is not None for _, _, c, p in readings)


def _decide(run: _Run, now_s: float, config: ExperimentConfig, reading: bool) -> _Verdict:
    warm, spec = config.warmup, config.thermal
    n = len(run.latencies)
    devices = spec.enabled and reading and _has_values(run.readings)
    by_latency = warm.convergence_detection or (spec.enabled and not devices)
    devices_steady, device_reason = judge(run.readings, now_s, spec) if devices else (True, "")
    latency_steady: bool | None = None
    if by_latency:
        run.final_cv = latency_cv(run.latencies, warm.window_size)
        latency_steady = run.final_cv is not None and run.final_cv <= warm.cv_threshold
    device = None if devices_steady else device_reason
    pending = _pending(run, now_s, config, device, latency_steady)
    method: StabilityMethod | None = None
    if n < warm.n_warmup:
        pending = f"{n}/{warm.n_warmup} batches; {pending or 'steady'}"
    elif pending is None:
        method = _steady_method(config, devices)
    elif spec.enabled and _out_of_time(run, now_s, config):
        method = "max_wait_reached"
    elif by_latency and not devices and n >= warm.max_iterations:
        method = "max_iterations_reached"
    return _Verdict(method, pending or "steady", devices_steady, device_reason, latency_steady)


def _out_of_time(run: _Run, now_s: float, config: ExperimentConfig) -> bool:
    # max_s is a bound, not a target: no batch starts that would end past it (on a busy CPU
    # a batch can last tens of seconds). The next is expected to last as long as the shorter
    # of the last two: a first batch slowed by one-off costs must not end warmup on its own.
    # min_s still holds.
    spec = config.thermal
    if now_s >= spec.max_s:
        return True
    if len(run.latencies) < 2 or now_s < spec.min_s:
        return False
    expected_s = min(seconds for _, seconds in run.latencies[-2:])
    return now_s + expected_s > spec.max_s + 1e-9


def _pending(
    run: _Run, now_s: float, config: ExperimentConfig, device: str | None, latency: bool | None
) -> str | None:
    """The first criterion not met yet (``device``: the device verdict), None when all are."""
    if device is not None:
        return device
    if latency is False:
        shown = "-" if run.final_cv is None else f"{run.final_cv:.1%}"
        return f"latency CV {shown} over {config.warmup.window_size} like batches"
    if config.thermal.enabled and now_s < config.thermal.min_s:
        return f"warming up at least {config.thermal.min_s:g}s"
    return None


def _steady_method(config: ExperimentConfig, devices: bool) -> StabilityMethod:
    if config.thermal.enabled:
        return "power_steady" if devices else "throughput_steady"
    return "latency_cv" if config.warmup.convergence_detection else "fixed_count"


def _thermal_record(
    run: _Run, now_s: float, verdict: _Verdict, config: ExperimentConfig
) -> ThermalRecord:
    n = len(run.latencies)
    if not config.thermal.enabled:
        return ThermalRecord(
            waited_s=0.0, stabilised=True, reason="disabled", method="disabled", batches=0
        )
    if not _has_values(run.readings):
        return ThermalRecord(
            waited_s=now_s,
            stabilised=False,
            reason="the devices reported neither temperature nor power",
            method="not_judged",
            batches=n,
        )
    steady = verdict.devices_steady
    return ThermalRecord(
        waited_s=now_s,
        stabilised=steady,
        reason="power and temperature steady" if steady else verdict.device_reason,
        method="power_steady" if steady else verdict.method,
        batches=n,
    )


def _no_warmup(config: ExperimentConfig, reader: DeviceReader | None) -> ThermalRecord | None:
    if reader is None:
        return None
    if not config.thermal.enabled:
        return ThermalRecord(
            waited_s=0.0, stabilised=True, reason="disabled", method="disabled", batches=0
        )
    return ThermalRecord(
        waited_s=0.0,
        stabilised=False,
        reason="warmup disabled: the devices are judged under load, and no batch ran",
        method="not_judged",
        batches=0,
    )


def stabilise(
    engine: Engine,
    batches: list[list[Request]],
    config: ExperimentConfig,
    reader: DeviceReader | None,
    clock: Clock,
    progress: Progress,
) -> tuple[WarmupRecord | None, ThermalRecord | None]:
    """Run real batches until steady or a bound; say how it ended and how long it took."""
    if not config.warmup.enabled:
        return None, _no_warmup(config, reader)
    run = _Run()
    start = clock()
    while True:
        batch = batches[len(run.latencies) % len(batches)]
        t0 = clock()
        result = engine.generate(batch, config)
        run.latencies.append((work(batch, result), clock() - t0))
        now = clock() - start
        if reader is not None and config.thermal.enabled:
            _read(run, reader, now)
        verdict = _decide(run, now, config, reader is not None)
        progress("warmup", f"{len(run.latencies)} batches, {now:.1f}s: {verdict.reason}")
        if verdict.method is not None:
            break
    warm = WarmupRecord(
        iterations=len(run.latencies),
        final_cv=run.final_cv,
        converged=verdict.latency_steady,
        duration_s=now,
        method=verdict.method,
    )
    thermal = _thermal_record(run, now, verdict, config) if reader is not None else None
    return warm, thermal
