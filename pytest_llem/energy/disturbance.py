"""Is the machine disturbed? The checks around each measured window, and what follows.

``WindowWatch`` brackets a window: ``begin()`` snapshots the host (energy/host_load.py) and
the GPUs (energy/gpu_findings.py), ``end()`` snapshots them again and returns the findings as
validity warnings with their figures, beside the window's host and GPU figures. ``decide``
is the policy (``validity.on_disturbed``): keep a disturbed window flagged (warn), measure
again after a backoff (retry), or fail. A serving protocol reuses both as they are.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_llem.energy import gpu_findings, host_load, procs
from pytest_llem.energy.gpu_findings import GpuLimits
from pytest_llem.energy.gpu_state import GpuState, GpuWatch
from pytest_llem.energy.host_load import HostLimits, HostReader, HostSnapshot
from pytest_llem.results.records import ValidityWarning
from pytest_llem.study.measurement import ValidityConfig

# What to run to clear each flag: the one-line failure names it.
FIXES: dict[str, str] = {
    "host_contention": "stop the other work on this machine (see top/htop) or run where the "
    "CPUs are this job's alone",
    "host_steal": "use a VM with dedicated vCPUs, or a bare-metal runner",
    "host_memory_pressure": "free memory (other jobs, a smaller batch) before measuring",
    "gpu_foreign_process": "stop the listed processes (nvidia-smi shows them), or pick "
    "another GPU with CUDA_VISIBLE_DEVICES",
    "clocks_event": "cool the GPU or check its power delivery (nvidia-smi -q -d "
    "PERFORMANCE names the slowdown)",
    "ecc_errors": "check the GPU's health (nvidia-smi -q -d ECC); it may need a reset or RMA",
}


def limits_of(validity: ValidityConfig) -> tuple[HostLimits, GpuLimits]:
    """The thresholds of the checks, from the study's ``validity:`` section."""
    return (
        HostLimits(validity.max_host_contention, validity.max_steal, validity.max_memory_pressure),
        GpuLimits(
            validity.max_clocks_event,
            validity.max_clock_spread,
            validity.max_idle_drift,
            validity.max_energy_mismatch,
        ),
    )


@dataclass
class WindowCheck:
    """What the checks found about one window."""

    warnings: list[ValidityWarning] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)  # host and per-GPU figures


class WindowWatch:
    """The checks of one item's windows, on the host and on the GPUs the engine uses."""

    def __init__(
        self,
        validity: ValidityConfig,
        host: HostReader | None = None,
        gpu: GpuWatch | None = None,
    ) -> None:
        self.host_limits, self.gpu_limits = limits_of(validity)
        self.host = host
        self.gpu = gpu
        self._host_start: HostSnapshot | None = None
        self._gpu_start: list[GpuState] = []

    def at_rest(self, baseline_w: dict[str, float]) -> list[ValidityWarning]:
        """Before warmup: the GPUs' settings and idle power against the session's baseline."""
        if self.gpu is None:
            return []
        found = gpu_findings.persistence_off(self.gpu.settings())
        found += gpu_findings.idle_drift(self.gpu.power_now(), baseline_w, self.gpu_limits)
        return found

    def begin(self) -> None:
        """Snapshot the host and the GPUs at the window's start."""
        self._host_start = self.host.snapshot() if self.host is not None else None
        self._gpu_start = self.gpu.states() if self.gpu is not None else []

    def end(
        self,
        per_device_j: dict[str, float] | None = None,
        edges: tuple[float, float] | None = None,
    ) -> WindowCheck:
        """Snapshot again and compare. ``per_device_j`` and ``edges``: a counter meter's window
        energy and its read times, checked against the sampled power (None: not a counter)."""
        check = WindowCheck()
        own: set[int] = set()
        if self.host is not None and self._host_start is not None:
            end = self.host.snapshot()
            found, fig = host_load.findings(self._host_start, end, self.host_limits)
            check.warnings += found
            if fig is not None:
                check.figures["host"] = fig.as_dict()
            own = set(self._host_start.own_pids | end.own_pids)
        if self.gpu is not None:
            # Ours: this process and its descendants, those of the window's start included.
            own |= procs.own_tree()
            check.warnings += self._gpu_findings(own, per_device_j, edges, check)
        return check

    def _gpu_findings(
        self,
        own: set[int],
        per_device_j: dict[str, float] | None,
        edges: tuple[float, float] | None,
        check: WindowCheck,
    ) -> list[ValidityWarning]:
        assert self.gpu is not None
        states = self.gpu.states()
        samples = self.gpu.samples()
        found = gpu_findings.foreign_processes([*self._gpu_start, *states], own)
        found += gpu_findings.ecc_errors(self._gpu_start, states)
        found += gpu_findings.clock_events(samples, self.gpu_limits)
        found += gpu_findings.clock_spread(samples, self.gpu_limits)
        if per_device_j and edges is not None:
            found += gpu_findings.energy_mismatch(samples, per_device_j, edges, self.gpu_limits)
        check.figures["gpu"] = gpu_findings.clock_figures(samples)
        return found


Action = Literal["accept", "retry", "fail"]
RETRIED = "window_retried"


@dataclass(frozen=True)
class Decision:
    """What to do with a window: keep it, measure again after ``wait_s``, or fail the item."""

    action: Action
    flags: tuple[ValidityWarning, ...] = ()
    wait_s: float = 0.0


def disturbances(
    warnings: Sequence[ValidityWarning], validity: ValidityConfig
) -> list[ValidityWarning]:
    """The warnings that make a window disturbed (``validity.disturbed_by``)."""
    return [w for w in warnings if w.code in validity.disturbed_by]


def decide(
    warnings: Sequence[ValidityWarning], validity: ValidityConfig, retries_done: int
) -> Decision:
    """The policy: a clean window is kept; a disturbed one is kept flagged under ``warn``,
    fails at once under ``fail``, and under ``retry`` is measured again after
    ``retry_backoff_s * 2**retries_done`` until ``max_retries`` retries, then fails."""
    flags = tuple(disturbances(warnings, validity))
    if not flags or validity.on_disturbed == "warn":
        return Decision("accept", flags)
    if validity.on_disturbed == "retry" and retries_done < validity.max_retries:
        return Decision("retry", flags, validity.retry_backoff_s * 2**retries_done)
    return Decision("fail", flags)


def must_fail(warnings: Sequence[ValidityWarning], validity: ValidityConfig) -> bool:
    """True when a finished item carries disturbance flags its policy does not keep: the
    protocol returns such a window only when retries are spent (or under ``fail``)."""
    return validity.on_disturbed != "warn" and bool(disturbances(warnings, validity))


def failure(warnings: Sequence[ValidityWarning], validity: ValidityConfig) -> tuple[str, str]:
    """The item's failure: a line naming each flag with its figures, and the fixes."""
    flags = disturbances(warnings, validity)
    named = "; ".join(f"{w.code}: {w.message}" for w in flags)
    windows = 1 + sum(int(w.figures.get("discarded", 0)) for w in warnings if w.code == RETRIED)
    tried = f" in each of {windows} windows" if windows > 1 else ""
    fixes = "; ".join(dict.fromkeys(FIXES.get(w.code, "re-run on a quiet machine") for w in flags))
    return (
        f"disturbed machine{tried}: {named}",
        f"{fixes}; or keep such windows flagged with validity: {{on_disturbed: warn}}",
    )


def retried(discarded: Sequence[Sequence[ValidityWarning]]) -> ValidityWarning | None:
    """``window_retried``: how many disturbed windows were measured again, and why."""
    if not discarded:
        return None
    why = "; ".join(
        f"window {i + 1}: " + ", ".join(w.label() for w in flags)
        for i, flags in enumerate(discarded)
    )
    return ValidityWarning(
        code=RETRIED,
        message=f"{len(discarded)} disturbed window(s) discarded before this one ({why})",
        figures={"brief": f"{len(discarded)} discarded", "discarded": len(discarded)},
    )


Sleep = Callable[[float], None]
