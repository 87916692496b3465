"""Result models (the JSON contract) and crash-safe writing.

``Measurement`` is what a runner returns (it also crosses the container boundary);
``ExperimentResult`` adds the item's identity and outcome. Both are versioned.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pytest_llem.results.redact import redact

SCHEMA_VERSION = 1

# pytest's outcomes, pytest's xfail pair, and "rerun": an attempt that pytest-rerunfailures
# repeats (the JSONL keeps it; the report keeps the item's last attempt).
Outcome = Literal["passed", "failed", "skipped", "error", "xfailed", "xpassed", "rerun"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Metrics(_Model):
    """Figures of one measured window. Energy fields are None when nothing measured them."""

    output_tokens: int
    input_tokens: int
    requests: int
    passes: int = 1
    duration_s: float
    output_tokens_per_s: float
    input_tokens_per_s: float
    latency_p50_s: float | None = None
    latency_p90_s: float | None = None
    latency_p99_s: float | None = None
    ttft_p50_s: float | None = None
    ttft_p99_s: float | None = None
    # Inter-token latency: percentiles over every gap between consecutive output tokens, where
    # the engine sees each token (the pytorch engine with streaming).
    itl_p50_s: float | None = None
    itl_p99_s: float | None = None
    # Time per output token: each request's mean gap between output tokens, percentiles taken
    # across requests (vLLM V1 keeps only first and last token times per request).
    tpot_p50_s: float | None = None
    tpot_p99_s: float | None = None
    # Why latency/TTFT figures are None although requests ran (e.g. vLLM kept no per-request
    # metrics): a batch wall time is never reported as a request's latency.
    latency_note: str | None = None
    energy_j: float | None = None
    energy_adjusted_j: float | None = None
    energy_per_output_token_j: float | None = None
    energy_per_output_token_adjusted_j: float | None = None
    avg_power_w: float | None = None
    # The peak during the measured window (device memory on CUDA); None where the engine
    # cannot reset its peak before the window (CPU: see process_peak_rss_mb).
    peak_memory_mb: float | None = None
    model_memory_mb: float | None = None
    # CPU: the peak resident memory of the engine's processes since they started (the model
    # load included), never reset: not the window's peak. vLLM: its processes' peaks summed.
    process_peak_rss_mb: float | None = None
    # Serving items (a ``serve:`` section): request latencies in ms over the completed
    # requests (vllm bench serve's definitions), throughputs and energy over the steady-state
    # window (ML.ENERGY's), achieved against target rate. None for offline items.
    ttft_ms_p50: float | None = None
    ttft_ms_p90: float | None = None
    ttft_ms_p99: float | None = None
    tpot_ms_p50: float | None = None
    tpot_ms_p90: float | None = None
    tpot_ms_p99: float | None = None
    itl_ms_p50: float | None = None
    itl_ms_p90: float | None = None
    itl_ms_p99: float | None = None
    e2el_ms_p50: float | None = None
    e2el_ms_p90: float | None = None
    e2el_ms_p99: float | None = None
    request_throughput: float | None = None
    goodput: float | None = None
    energy_per_request_j: float | None = None
    energy_per_token_j: float | None = None
    steady_state_s: float | None = None
    achieved_rate: float | None = None
    target_rate: float | None = None
    completed_requests: int | None = None
    errored_requests: int | None = None


class CrosscheckInfo(_Model):
    """A second energy source read over the same window as the item's (``energy.crosscheck``)."""

    source: str
    total_j: float | None = None
    per_device_j: dict[str, float] = Field(default_factory=dict)
    reason: str | None = None


class EnergyInfo(_Model):
    """Where the energy figures came from, or why there are none."""

    source: str | None = None
    method: str | None = None
    resolution_j: float | None = None
    reason: str | None = None
    per_device_j: dict[str, float] = Field(default_factory=dict)
    baseline_w: float | None = None
    baseline_age_s: float | None = None
    # The meter's opening and closing reads on time.perf_counter() (CLOCK_MONOTONIC on Linux,
    # one clock for every process and container of the host): lets an independent reader
    # integrate over exactly this window (``python -m pytest_llem validate``).
    t_start_s: float | None = None
    t_end_s: float | None = None
    crosscheck: CrosscheckInfo | None = None


class ValidityWarning(_Model):
    """A machine-readable reason to distrust a figure (see study.measurement.WARNING_CODES);
    ``figures``: the numbers behind it (``brief``, where present, is what a table shows)."""

    code: str
    message: str
    figures: dict[str, float | str] = Field(default_factory=dict)

    def label(self) -> str:
        """``host_contention 61% of 2 cores``: the code with its brief figure, for tables."""
        brief = self.figures.get("brief")
        return f"{self.code} {brief}" if brief else self.code


# How warmup ended and how steadiness was shown (``WarmupRecord.method``,
# ``ThermalRecord.method``); the bounds name what stopped an unsteady warmup.
StabilityMethod = Literal[
    "fixed_count",  # warmup.n_warmup batches, nothing judged (thermal disabled)
    "latency_cv",  # warmup.convergence_detection, thermal disabled
    "power_steady",  # device power and temperature steady
    "throughput_steady",  # no device readings (CPU): batch latency steady
    "max_wait_reached",  # thermal.max_s passed first
    "max_iterations_reached",  # warmup.max_iterations passed first
    "not_judged",  # no batch ran (warmup disabled), or the devices report nothing to judge
    "disabled",  # thermal.enabled is false
]


class WarmupRecord(_Model):
    """What warmup did before the window."""

    iterations: int
    final_cv: float | None = None
    converged: bool | None = None
    duration_s: float
    # Optional, so that results written before it existed stay readable.
    method: StabilityMethod | None = None


class ThermalRecord(_Model):
    """How the devices were shown steady before the window, and how long it took."""

    waited_s: float
    stabilised: bool
    reason: str
    # Optional, so that results written before them stay readable: how stability was
    # established, and the warmup batches run meanwhile (the wait overlaps warmup).
    method: StabilityMethod | None = None
    batches: int | None = None


class SamplerSummary(_Model):
    """Power/thermal samples taken alongside the window, summarised."""

    samples: int
    interval_s: float
    power_w: dict[str, float] = Field(default_factory=dict)
    temperature_c: dict[str, float] = Field(default_factory=dict)
    memory_used_mb: dict[str, float] = Field(default_factory=dict)
    utilization_pct: dict[str, float] = Field(default_factory=dict)
    throttle_s: dict[str, float] = Field(default_factory=dict)
    timeseries_file: str | None = None


class PromptOutput(_Model):
    """One prompt's output in the measured window (its first pass), for the quality checks.

    ``top`` holds, for each output position, the ids of the most likely tokens there (best
    first), scored with the prefix the output itself had; empty when nothing scored them.
    """

    tokens: list[int]
    top: list[list[int]] = Field(default_factory=list)


class QualityRecord(_Model):
    """What an item's answers were, as far as the ``quality:`` checks need it.

    Present only when the config sets ``quality:``. ``outputs`` (per prompt, in the window's
    prompt order) only when ``token_agreement`` is checked; ``perplexity`` only when
    ``perplexity`` is. ``note`` says what could not be recorded and why.
    """

    output_tokens_per_request: float
    outputs: list[PromptOutput] = Field(default_factory=list)
    top_k: int = 0  # how many token ids each ``top`` list holds
    perplexity: float | None = None
    perplexity_tokens: int | None = None  # tokens scored
    perplexity_text: str | None = None  # which text: "builtin:<name>" or the file's name
    note: str | None = None


class RunnerInfo(_Model):
    """How the item was executed."""

    type: Literal["local", "docker", "python"] = "local"
    source: str = "default"
    strategy: str | None = None
    image: str | None = None
    image_digest: str | None = None
    container_id: str | None = None
    # Persistent strategy: why the container was restarted before this item (health check).
    restart_reason: str | None = None


class Measurement(_Model):
    """Everything a runner measured for one item."""

    schema_version: int = SCHEMA_VERSION
    metrics: Metrics
    energy: EnergyInfo
    warmup: WarmupRecord | None = None
    thermal: ThermalRecord | None = None
    sampler: SamplerSummary | None = None
    warnings: list[ValidityWarning] = Field(default_factory=list)
    # The answers, where the config's quality: section asks (None otherwise).
    quality: QualityRecord | None = None
    model_load_s: float | None = None
    model_cached: bool = False
    environment: dict[str, Any] = Field(default_factory=dict)
    runner: RunnerInfo | None = None
    # Serving items: every figure of the run (the whole run's throughputs and energy beside
    # the window's, the client's own cost, the server's gauges, the window's edges), the
    # server (its log, whether it was reused); None for offline items.
    serving: dict[str, Any] | None = None


class ExperimentResult(_Model):
    """One item's record in the JSONL file and the JSON report."""

    schema_version: int = SCHEMA_VERSION
    nodeid: str
    outcome: Outcome
    study: str
    study_hash: str
    point_id: str
    config_hash: str
    cycle: int
    config: dict[str, Any]
    n_cycles: int | None = None  # the config's cycles in the study (None in older files)
    arm: str | None = None  # A/B: reference or candidate
    pair: str | None = None  # A/B: the grid point both arms share
    attempt: int = 1  # >1 when a plugin (pytest-rerunfailures, xdist) ran the item again
    study_file: str | None = None
    line: int | None = None
    metrics: Metrics | None = None
    energy: EnergyInfo | None = None
    warmup: WarmupRecord | None = None
    thermal: ThermalRecord | None = None
    sampler: SamplerSummary | None = None
    warnings: list[ValidityWarning] = Field(default_factory=list)
    runner: RunnerInfo | None = None
    quality: QualityRecord | None = None
    model_load_s: float | None = None
    model_cached: bool = False
    environment: dict[str, Any] = Field(default_factory=dict)
    hardware: str | None = None
    gate: dict[str, Any] | None = None
    cycle_stats: dict[str, dict[str, float]] | None = None
    resumed: bool = False
    worker: str | None = None
    message: str | None = None  # one line: the reason (a skip's, a failure's exception)
    traceback: str | None = None  # the failure's whole text, when there is more than a line
    # Where a failed item was when it ended: its phase, how far into it, seconds since its
    # runner started (a timeout in the measured window: "measure", "12.1s of 30s measured").
    interrupted: dict[str, Any] | None = None
    session_id: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    # Seconds of cool-down before the item (execution.experiment_gap_s / cycle_gap_s).
    cooldown_s: float | None = None
    serving: dict[str, Any] | None = None  # a serving item's whole-run figures and server


def append_jsonl(path: Path, record: BaseModel | dict[str, Any]) -> None:
    """Append one JSON line and fsync it: a crash after this call loses nothing."""
    data = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    line = redact(json.dumps(data, separators=(",", ":"), sort_keys=True)) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write() on an O_APPEND descriptor: concurrent writers never interleave a line.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file beside ``path`` and rename it over: readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(redact(json.dumps(data, indent=2, sort_keys=False)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
