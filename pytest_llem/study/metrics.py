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
    # Serving items (serve: sections).
    **{
        f"{name}_ms_p{q}": MetricInfo("ms", "lower", f"{label} p{q}")
        for name, label in (
            ("ttft", "time to first token"),
            ("tpot", "time per output token"),
            ("itl", "inter-token latency"),
            ("e2el", "end-to-end request latency"),
        )
        for q in (50, 90, 99)
    },
    "request_throughput": MetricInfo("req/s", "higher", "request throughput (steady state)"),
    "goodput": MetricInfo("req/s", "higher", "requests/s meeting every SLO (steady state)"),
    "energy_per_request_j": MetricInfo("J/req", "lower", "energy per request"),
    "energy_per_token_j": MetricInfo("J/tok", "lower", "energy per token (input + output)"),
    "steady_state_s": MetricInfo("s", "higher", "steady-state window"),
    "achieved_rate": MetricInfo("req/s", "higher", "achieved arrival rate"),
    "errored_requests": MetricInfo("req", "lower", "requests that errored"),
}
