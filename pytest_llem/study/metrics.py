"""The metrics pytest-llem reports, with their units and which direction is better.

Pure data shared by the study grammar (gate blocks name metrics), the gate and the reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["lower", "higher"]


@dataclass(frozen=True)
class MetricInfo:
    """One reported metric: its unit, which direction is better and a short label."""

    unit: str
    better: Direction
    label: str


METRICS: dict[str, MetricInfo] = {
    "energy_j": MetricInfo("J", "lower", "energy"),
    "energy_adjusted_j": MetricInfo("J", "lower", "energy (idle-adjusted)"),
    "energy_per_output_token_j": MetricInfo("J/tok", "lower", "energy per output token"),
    "energy_per_output_token_adjusted_j": MetricInfo("J/tok", "lower", "adj. energy per token"),
    "avg_power_w": MetricInfo("W", "lower", "average power"),
    "output_tokens_per_s": MetricInfo("tok/s", "higher", "output throughput"),
    "input_tokens_per_s": MetricInfo("tok/s", "higher", "input throughput"),
    "duration_s": MetricInfo("s", "lower", "measured window"),
    "latency_p50_s": MetricInfo("s", "lower", "latency p50"),
    "latency_p90_s": MetricInfo("s", "lower", "latency p90"),
    "latency_p99_s": MetricInfo("s", "lower", "latency p99"),
    "ttft_p50_s": MetricInfo("s", "lower", "time to first token p50"),
    "ttft_p99_s": MetricInfo("s", "lower", "time to first token p99"),
    "itl_p50_s": MetricInfo("s", "lower", "inter-token latency p50 (per-token gaps)"),
    "itl_p99_s": MetricInfo("s", "lower", "inter-token latency p99 (per-token gaps)"),
    "tpot_p50_s": MetricInfo("s", "lower", "time per output token p50 (across requests)"),
    "tpot_p99_s": MetricInfo("s", "lower", "time per output token p99 (across requests)"),
    "peak_memory_mb": MetricInfo("MB", "lower", "peak memory"),
    "model_memory_mb": MetricInfo("MB", "lower", "model memory"),
    "process_peak_rss_mb": MetricInfo("MB", "lower", "process peak RSS since start"),
}
