"""Measurement-protocol sections of an experiment: how it is measured, not what.

None of these fields enter the config hash (see ``model.WORKLOAD_FIELDS``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

EnergyBackend = Literal["auto", "nvml", "zeus", "rapl", "null"]

# Findings that mean the machine was disturbed during the window (energy/disturbance.py):
# something else used the CPUs or the GPU, or the GPU slowed itself down. A window with one
# of these is measured again (``validity.on_disturbed: retry``), fails the item, or is kept
# with the flag (``warn``), and is never silently used for a baseline or a verdict.
DISTURBANCE_CODES: tuple[str, ...] = (
    "host_contention",  # other processes used the CPUs the run may use
    "host_steal",  # the hypervisor gave this VM's CPU time to others
    "host_memory_pressure",  # tasks stalled waiting for memory
    "gpu_foreign_process",  # a process that is not ours computes on the GPU
    "clocks_event",  # thermal or hardware slowdown, power brake
    "ecc_errors",  # volatile ECC error counters moved
)

# Machine-readable validity warning codes (see measure/validity.py and energy/disturbance.py
# for when each fires).
WARNING_CODES: tuple[str, ...] = (
    "short_window",
    "few_samples",
    "thermal_drift",
    "thermal_not_stable",
    "persistence_mode_off",
    "baseline_stale",
    "baseline_missing",
    "energy_zero",
    "warmup_not_converged",
    "unstable_cycles",  # set by the gate at a config's last cycle (gate/stability.py)
    "concurrent_measurement",
    *DISTURBANCE_CODES,
    "power_capped",  # sw power cap: a GPU at its power limit (steady, not a disturbance)
    "clocks_varied",  # SM clock spread in the window (clocks not locked)
    "idle_drift",  # idle power at the item's start above the session's idle baseline
    "energy_mismatch",  # energy counter vs integrated sampled power disagree
    "window_retried",  # disturbed windows were discarded before this one
    # Serving items (serving/validity.py): no steady state, a rate below its target,
    # failed requests, a batch under 80% full, a saturated KV cache, a run cut short.
    "no_window",
    "rate_below_target",
    "errored_requests",
    "low_occupancy",
    "kv_cache_saturated",
    "stopped_early",
)

# Codes of older files and studies, read as the codes that replaced them.
RENAMED_CODES: dict[str, tuple[str, ...]] = {
    "throttling": ("clocks_event", "power_capped"),
    "other_processes": ("gpu_foreign_process",),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WarmupConfig(_Section):
    """Warmup before the measured window: a fixed count, or until latency settles (CV)."""

    enabled: bool = True
    n_warmup: int = Field(default=3, ge=1, description="Warmup batches of real prompts")
    convergence_detection: bool = False
    cv_threshold: float = Field(default=0.05, gt=0.0, le=0.5)
    window_size: int = Field(default=3, ge=2)
    max_iterations: int = Field(default=20, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> WarmupConfig:
        if self.convergence_detection and self.max_iterations < self.window_size:
            raise ValueError("warmup.max_iterations must be at least warmup.window_size")
        return self


class ThermalConfig(_Section):
    """Warm up until the devices are steady before measuring (bounded, not a fixed wait).

    Warmup batches continue until power and temperature (throughput on CPU) are steady, so a
    device left hot and steady by the previous item is recognised in ``min_steady_s`` while
    one still heating keeps warming up until its plateau, at most ``max_s``.
    """

    enabled: bool = True
    min_s: float = Field(default=0.0, ge=0.0, description="Warm up at least this long")
    max_s: float = Field(default=60.0, ge=0.0)
    window_s: float = Field(
        default=5.0,
        gt=0.0,
        description="Trailing window of the temperature slope; the horizon power drift is "
        "projected over",
    )
    min_steady_s: float = Field(
        default=1.5,
        gt=0.0,
        description="Shortest run of steady power readings that shows a device steady "
        "(at most window_s)",
    )
    max_temp_slope_c_per_min: float = Field(default=1.0, gt=0.0)
    max_power_spread: float = Field(
        default=0.05,
        gt=0.0,
        description="(max-min)/mean of power over the steady run, and of its trend over window_s",
    )

    @model_validator(mode="before")
    @classmethod
    def _max_follows_min(cls, data: Any) -> Any:
        # A floor above the default ceiling (LLenergyMeasure's thermal_floor_seconds: 90) is
        # a floor: the ceiling rises with it unless the study sets one.
        if isinstance(data, dict) and "max_s" not in data:
            floor = data.get("min_s")
            if isinstance(floor, (int, float)) and floor > cls.model_fields["max_s"].default:
                return {**data, "max_s": floor}
        return data

    @model_validator(mode="after")
    def _bounds(self) -> ThermalConfig:
        if self.max_s < self.min_s:
            raise ValueError("thermal.max_s must be >= thermal.min_s")
        return self


class WindowConfig(_Section):
    """The measured window repeats the prompt set until it lasts at least ``min_duration_s``.

    The NVML energy counter updates about every 100 ms: a window under ~5 s carries a few
    percent of edge error, and one under ~100 ms can read 0 J.
    """

    min_duration_s: float = Field(default=5.0, ge=0.0)
    max_passes: int = Field(default=1000, ge=1, description="Upper bound on prompt-set passes")


class BaselineConfig(_Section):
    """Idle power, measured once per session per device and cached on disk."""

    enabled: bool = True
    duration_s: float = Field(default=10.0, ge=1.0, le=300.0)
    max_age_s: float = Field(
        default=3600.0, gt=0.0, description="Older cached baselines re-measure"
    )


class EnergyConfig(_Section):
    """Which energy source to use and how to sample power alongside it."""

    backend: EnergyBackend = "auto"
    sample_interval_s: float = Field(default=0.1, ge=0.01, le=10.0)
    save_timeseries: bool = False
    # A second source read over the very same window (``python -m pytest_llem validate``
    # compares Zeus with NVML this way); recorded as energy.crosscheck, never in the metrics.
    crosscheck: Literal["nvml", "zeus", "rapl"] | None = None

    @field_validator("backend", mode="before")
    @classmethod
    def _none_is_null(cls, value: Any) -> Any:
        # LLenergyMeasure files wrote `backend: null` (YAML None) to disable energy.
        return "null" if value is None else value


OnDisturbed = Literal["warn", "retry", "fail"]


class ValidityConfig(_Section):
    """Thresholds for validity warnings, which warnings fail the item, and what a disturbed
    window leads to (see docs/measurement.md, "A disturbed machine")."""

    min_window_s: float = Field(default=5.0, ge=0.0)
    min_samples: int = Field(default=10, ge=0)
    fail_on: tuple[str, ...] = ()
    on_disturbed: OnDisturbed = Field(
        default="retry",
        description="A window with a disturbance flag: warn (keep it, flagged), retry (measure "
        "again after a backoff, then fail), fail (fail the item at once)",
    )
    disturbed_by: tuple[str, ...] = Field(
        default=DISTURBANCE_CODES, description="Flags that make a window disturbed"
    )
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_s: float = Field(
        default=10.0, ge=0.0, description="Wait before the first retry; doubles for each next"
    )
    # Thresholds of the disturbance checks (energy/host_load.py, energy/gpu_state.py).
    max_host_contention: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="Share of the run's CPUs other processes may use during the window",
    )
    max_steal: float = Field(default=0.10, ge=0.0, le=1.0)
    max_memory_pressure: float = Field(
        default=0.10, ge=0.0, le=1.0, description="Share of the window tasks stalled on memory"
    )
    max_clocks_event: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Share of the window's GPU samples under a slowdown reason (each reason)",
    )
    max_clock_spread: float = Field(default=0.10, ge=0.0, description="SM clock (max-min)/max")
    max_idle_drift: float = Field(
        default=0.25, ge=0.0, description="Idle power above the baseline, as a fraction of it"
    )
    max_energy_mismatch: float = Field(
        default=0.10, ge=0.0, description="Counter vs integrated sampled power, relative"
    )

    @field_validator("fail_on", "disturbed_by")
    @classmethod
    def _known_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [code for code in value if code not in WARNING_CODES + tuple(RENAMED_CODES)]
        if unknown:
            raise ValueError(f"unknown warning codes {unknown}; known: {list(WARNING_CODES)}")
        out: list[str] = []
        for code in value:
            for new in RENAMED_CODES.get(code, (code,)):
                if new not in out:
                    out.append(new)
        return tuple(out)
