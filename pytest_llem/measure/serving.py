"""The serving protocol: a load profile against a server, energy at the steady state's edges.

The client (``serving.run_load``) sends the item's requests on their schedule and calls back
at four moments: before the first measured send and after the last (the whole run's meter
opens and closes there), and at ML.ENERGY's steady-state edges (the window's meter and the
power sampler open when the ``B``-th request has its first token and close when
``num_requests - B - 1`` are over). The figures come from the request records
(``serving.window``), so a run's latencies match ``vllm bench serve``'s definitions and its
energy is the window's alone; the whole run is recorded beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llem.energy import disturbance
from pytest_llem.energy.disturbance import WindowCheck
from pytest_llem.energy.meter import EnergyMeter, EnergyReading
from pytest_llem.gate.quality_serving import from_requests
from pytest_llem.measure.protocol import Instruments, check_window, until_undisturbed
from pytest_llem.results.records import EnergyInfo, Measurement, Metrics, ValidityWarning
from pytest_llem.serving import LoadSpec, Slo, find_window, metrics, run_load, window_counts
from pytest_llem.serving.records import LoadRun
from pytest_llem.serving.validity import validity
from pytest_llem.study.experiment import ExperimentConfig


@dataclass(frozen=True)
class Target:
    """Where the load goes: the OpenAI API root, the model name, the server's root for
    ``/metrics`` (None: not scraped)."""

    base_url: str
    model: str
    metrics_root: str | None = None


def load_spec(config: ExperimentConfig, target: Target, prompts: Sequence[Any]) -> LoadSpec:
    """The client's spec for a serving item."""
    serve = config.serve
    assert serve is not None
    dec = config.decoder
    scrape = serve.scrape_metrics and target.metrics_root is not None
    quality = config.quality
    # The quality checks need each answer's token ids and, for a first divergence, the
    # top-k alternatives at each step named by id (vLLM's return_tokens_as_token_ids).
    tokens = quality is not None and quality.records_tokens
    top_k = quality.top_k if tokens and quality is not None and quality.top_k > 0 else None
    return LoadSpec(
        base_url=target.base_url,
        model=target.model,
        prompts=list(prompts),
        max_tokens=config.max_output_tokens,
        num_requests=serve.num_requests,
        rate=serve.rate,
        arrival=serve.arrival,
        burstiness=serve.burstiness,
        concurrency=serve.concurrency,
        warmup_requests=serve.warmup,
        fixed_output=serve.fixed_output,
        temperature=dec.temperature if dec.sampling else 0.0,
        request_timeout_s=serve.request_timeout_s,
        deadline_s=serve.deadline_s,
        seed=config.random_seed,
        window=window_counts(serve.num_requests, serve.window_batch),
        metrics_url=f"{target.metrics_root}/metrics" if scrape else None,
        token_ids=tokens,
        logprobs=top_k,
        extra_body={"return_tokens_as_token_ids": True} if top_k else {},
    )


class _Edges:
    """The meters and the sampler, opened and closed by the client's edge callbacks."""

    def __init__(self, inst: Instruments, run_meter: EnergyMeter | None) -> None:
        self.inst = inst
        self.run_meter = run_meter
        self.window: EnergyReading | None = None
        self.run: EnergyReading | None = None
        self.summary: Any = None
        self.check = WindowCheck()
        self.open = False

    def __call__(self, name: str, t: float) -> None:
        inst = self.inst
        if name == "run_start" and self.run_meter is not None:
            self.run_meter.start()
        elif name == "start":
            if inst.sampler is not None:
                inst.sampler.start()
            if inst.watch is not None:
                inst.watch.begin()
            inst.meter.start()
            self.open = True
        elif name == "end" and self.open:
            self.window = inst.meter.stop()
            self.summary = inst.sampler.stop() if inst.sampler is not None else None
            self.check = check_window(inst, self.window)
            self.open = False
        elif name == "run_end" and self.run_meter is not None:
            self.run = self.run_meter.stop()

    def abandon(self) -> None:
        """The run ended without closing the window (an error): stop the sampler's thread."""
        if self.open and self.inst.sampler is not None:
            self.inst.sampler.halt()
        self.open = False


def _metrics(figures: dict[str, float | None], reading: EnergyReading | None) -> Metrics:
    def get(name: str) -> float | None:
        return figures.get(name)

    def seconds(name: str) -> float | None:
        value = get(name)
        return value / 1000.0 if value is not None else None

    duration = get("steady_state_s") or 0.0
    energy = reading.total_j if reading is not None else None
    ints = ("completed_requests", "errored_requests")
    served = {
        name: (int(v) if name in ints and (v := get(name)) is not None else get(name))
        for name in Metrics.model_fields
        if name in figures and name not in ("output_tokens_per_s", "input_tokens_per_s")
    }
    return Metrics(
        **served,
        output_tokens=round(get("window_output_tokens") or 0.0),
        input_tokens=round(get("window_input_tokens") or 0.0),
        requests=int(get("window_requests") or 0),
        duration_s=duration,
        output_tokens_per_s=get("output_tokens_per_s") or 0.0,
        input_tokens_per_s=get("input_tokens_per_s") or 0.0,
        # A request's latency is its end-to-end latency; TTFT and TPOT as offline, in s.
        latency_p50_s=seconds("e2el_ms_p50"),
        latency_p90_s=seconds("e2el_ms_p90"),
        latency_p99_s=seconds("e2el_ms_p99"),
        ttft_p50_s=seconds("ttft_ms_p50"),
        ttft_p99_s=seconds("ttft_ms_p99"),
        itl_p50_s=seconds("itl_ms_p50"),
        itl_p99_s=seconds("itl_ms_p99"),
        tpot_p50_s=seconds("tpot_ms_p50"),
        tpot_p99_s=seconds("tpot_ms_p99"),
        energy_j=energy,
        avg_power_w=energy / duration if energy is not None and duration > 0 else None,
    )


def _warnings(
    config: ExperimentConfig, run: LoadRun, window: Any, figures: dict[str, float | None]
) -> list[ValidityWarning]:
    serve = config.serve
    assert serve is not None
    found = validity(
        run,
        window,
        figures,
        min_window_s=config.validity.min_window_s,
        cap=serve.window_batch if serve.concurrency or serve.batch else None,
    )
    return [ValidityWarning(code=code, message=message) for code, message in found]


def _once(
    config: ExperimentConfig,
    target: Target,
    prompts: Sequence[Any],
    inst: Instruments,
    run_meter: EnergyMeter | None = None,
) -> tuple[Measurement, dict[str, Any]]:
    """One run of the load: the measurement and the whole run's record (figures outside the
    catalogue, the run's energy, the edges, the window's host and GPU figures)."""
    serve = config.serve
    assert serve is not None
    spec = load_spec(config, target, prompts)
    edges = _Edges(inst, run_meter)
    inst.progress("measure", f"{serve.num_requests} requests at {_rate(serve.rate)}")
    try:
        load = run_load(spec, on_edge=edges, clock=inst.clock)
    finally:
        edges.abandon()
    k, m = spec.window or (1, 1)
    window = find_window(load.records, k, m)
    slo = Slo(**serve.slo.model_dump()) if serve.slo is not None else None
    reading = edges.window
    energy_j = reading.total_j if reading is not None else None
    figures = metrics(load, window, slo, energy_j=energy_j)
    figures_metrics = _metrics(figures, reading)
    baseline_w = None
    if inst.idle is not None and reading is not None and reading.total_j is not None:
        baseline = inst.idle.for_devices(
            list(reading.per_device_j), inst.wall_clock(), config.baseline.max_age_s
        )
        baseline_w = baseline.power_w
    if baseline_w is not None and energy_j is not None and reading is not None:
        # Idle draw over the window is not the load's; floored at 0, as offline.
        adjusted = max(0.0, energy_j - baseline_w * reading.duration_s)
        figures_metrics = figures_metrics.model_copy(update={"energy_adjusted_j": adjusted})
    info = inst.meter.info
    energy = EnergyInfo(
        source=info.source,
        method=info.method,
        resolution_j=info.resolution_j,
        reason=_energy_reason(reading, info.reason),
        per_device_j=dict(reading.per_device_j) if reading is not None else {},
        baseline_w=baseline_w,
        t_start_s=reading.t_start_s if reading is not None else None,
        t_end_s=reading.t_end_s if reading is not None else None,
    )
    warnings = [*_warnings(config, load, window, figures), *edges.check.warnings]
    record = {
        "figures": figures,
        "energy_run_j": edges.run.total_j if edges.run is not None else None,
        "edges": dict(load.edges),
        "warmup_requests": len(load.warmup),
        "gauges": "not scraped" if load.gauges is None else load.gauges.reason or "scraped",
        "stopped": load.stopped,
        "window_checks": edges.check.figures,
    }
    done = load.completed
    quality = from_requests(
        config.quality,
        prompts=len(prompts),
        index=[r.index for r in done],
        output_tokens=[r.tokens_out for r in done],
        token_ids=[r.token_ids for r in done],
        top_logprobs=[r.top_logprobs for r in done],
    )
    measurement = Measurement(
        metrics=figures_metrics,
        energy=energy,
        sampler=edges.summary,
        warnings=warnings,
        quality=quality,
    )
    return measurement, record


def _rate(rate: float) -> str:
    return "once (rate inf)" if math.isinf(rate) else f"{rate:g} req/s"


def _energy_reason(reading: EnergyReading | None, meter_reason: str | None) -> str | None:
    if reading is None:
        return "no steady-state window: the meters were not read"
    return reading.reason if reading.total_j is None else None


def run(
    config: ExperimentConfig,
    target: Target,
    prompts: Sequence[Any],
    inst: Instruments,
    run_meter: EnergyMeter | None = None,
) -> tuple[Measurement, dict[str, Any]]:
    """Load the server, read the meters at the steady state's edges, check the window.

    A window the checks find disturbed (another job on the machine, a GPU slowed down) is run
    again after the backoff while ``validity.on_disturbed`` says so, as an offline window is
    (``disturbance.decide``); the last run is returned, with ``window_retried`` naming the
    discarded ones, and one still disturbed fails the item in the session.
    """
    records: list[dict[str, Any]] = []

    def once() -> Measurement:
        measurement, record = _once(config, target, prompts, inst, run_meter)
        records.append(record)
        return measurement

    measurement, discarded = until_undisturbed(once, config.validity, inst, "loading again")
    record = records[-1]
    warnings = [*measurement.warnings, *inst.device_warnings]
    note = disturbance.retried(discarded)
    if note is not None:
        warnings.append(note)
    record["discarded_runs"] = [[w.label() for w in flags] for flags in discarded]
    return measurement.model_copy(update={"warnings": warnings}), record
