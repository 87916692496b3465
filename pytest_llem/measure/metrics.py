"""Turn the completions and the energy reading of a window into Metrics."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_llem.energy.meter import EnergyReading
from pytest_llem.engines.engine import Completion, MemoryInfo
from pytest_llem.results.records import Metrics
from pytest_llem.stats.descriptive import percentile


def _pcts(values: Sequence[float], qs: Sequence[float]) -> list[float | None]:
    return [percentile(values, q) if values else None for q in qs]


def compute(
    completions: Sequence[Completion],
    duration_s: float,
    passes: int,
    reading: EnergyReading,
    memory: MemoryInfo,
    baseline_w: float | None,
) -> Metrics:
    """Metrics of one window. Input and output throughput stay separate, never summed."""
    out_tokens = sum(c.output_tokens for c in completions)
    in_tokens = sum(c.input_tokens for c in completions)
    duration = max(duration_s, 1e-9)
    latencies = [c.latency_s for c in completions if c.latency_s is not None]
    # Percentiles of some requests' latencies would describe a different population: all or none.
    whole = len(latencies) == len(completions)
    lat50, lat90, lat99 = _pcts(latencies if whole else [], (50, 90, 99))
    notes = sorted({c.timing_note for c in completions if c.timing_note})
    ttfts = [c.ttft_s for c in completions if c.ttft_s is not None]
    itls = [gap for c in completions for gap in c.itl_s]
    tpots = [c.tpot_s for c in completions if c.tpot_s is not None]
    ttft50, ttft99 = _pcts(ttfts, (50, 99))
    itl50, itl99 = _pcts(itls, (50, 99))
    tpot50, tpot99 = _pcts(tpots, (50, 99))
    energy = reading.total_j
    adjusted = None
    if energy is not None and baseline_w is not None:
        # Idle draw over the window is not the workload's; floor at 0 so noise never goes negative.
        adjusted = max(0.0, energy - baseline_w * reading.duration_s)
    return Metrics(
        output_tokens=out_tokens,
        input_tokens=in_tokens,
        requests=len(completions),
        passes=passes,
        duration_s=duration_s,
        output_tokens_per_s=out_tokens / duration,
        input_tokens_per_s=in_tokens / duration,
        latency_p50_s=lat50,
        latency_p90_s=lat90,
        latency_p99_s=lat99,
        ttft_p50_s=ttft50,
        ttft_p99_s=ttft99,
        itl_p50_s=itl50,
        itl_p99_s=itl99,
        tpot_p50_s=tpot50,
        tpot_p99_s=tpot99,
        latency_note="; ".join(notes) or None,
        energy_j=energy,
        energy_adjusted_j=adjusted,
        energy_per_output_token_j=energy / out_tokens
        if energy is not None and out_tokens
        else None,
        energy_per_output_token_adjusted_j=(
            adjusted / out_tokens if adjusted is not None and out_tokens else None
        ),
        avg_power_w=energy / reading.duration_s
        if energy is not None and reading.duration_s
        else None,
        peak_memory_mb=memory.peak_mb,
        model_memory_mb=memory.model_mb,
        process_peak_rss_mb=memory.details.get("process_peak_rss_mb"),
    )
