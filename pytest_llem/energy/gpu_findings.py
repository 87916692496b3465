"""What a GPU's readings say about its window (pure): processes that are not ours, ECC errors,
clock events and power capping through the window's samples, the SM clocks seen, the energy
counter against integrated sampled power, idle power against the baseline, persistence mode.
Each finding is a validity warning with its figures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_llem.energy.gpu_state import GIB, GpuProcess, GpuSettings, GpuState
from pytest_llem.energy.meter import trapezoid
from pytest_llem.energy.sampler import CLOCK_EVENT_BITS, Sample
from pytest_llem.results.records import ValidityWarning

# Slowdowns that mean something is wrong (heat, power delivery); a GPU at its power limit
# (sw power cap) is the steady state of a heavy load and has its own, milder flag.
SLOWDOWNS = ("hw_slowdown", "sw_thermal", "hw_thermal", "hw_power_brake")
# Idle power may sit this many watts above the baseline before it counts as drift, whatever
# the relative limit: a few watts are the sensor's noise and the memory a loaded model holds.
IDLE_DRIFT_FLOOR_W = 10.0


@dataclass(frozen=True)
class GpuLimits:
    """Thresholds of the GPU findings (``validity.max_*``)."""

    max_clocks_event: float = 0.05
    max_clock_spread: float = 0.10
    max_idle_drift: float = 0.25
    max_energy_mismatch: float = 0.10


def _short(uuid: str) -> str:
    return uuid[:12]


def foreign_processes(
    states: Sequence[GpuState], own: set[int] | frozenset[int]
) -> list[ValidityWarning]:
    """``gpu_foreign_process`` for processes on the GPUs that are not this run's."""
    out = []
    for uuid in dict.fromkeys(s.uuid for s in states):
        seen: dict[int, GpuProcess] = {}
        for state in states:
            if state.uuid == uuid:
                seen.update({p.pid: p for p in state.processes or () if p.pid not in own})
        if not seen:
            continue
        found = [seen[pid] for pid in sorted(seen)]
        listed = ", ".join(p.describe() for p in found)
        memory = sum(p.memory_bytes or 0 for p in found)
        out.append(
            ValidityWarning(
                code="gpu_foreign_process",
                message=f"{_short(uuid)}: {listed} computing on the GPU beside this run",
                figures={
                    "brief": found[0].describe()
                    + (f" +{len(found) - 1}" if len(found) > 1 else ""),
                    "device": uuid,
                    "pids": " ".join(str(p.pid) for p in found),
                    "memory_gib": round(memory / GIB, 3),
                },
            )
        )
    return out


def ecc_errors(start: Sequence[GpuState], end: Sequence[GpuState]) -> list[ValidityWarning]:
    """``ecc_errors`` when a GPU's volatile ECC counters moved during the window."""
    out = []
    before = {s.uuid: s for s in start}
    for after in end:
        first = before.get(after.uuid)
        if first is None:
            continue
        moved = {
            kind: b - a
            for kind, a, b in (
                ("corrected", first.ecc_corrected, after.ecc_corrected),
                ("uncorrected", first.ecc_uncorrected, after.ecc_uncorrected),
            )
            if a is not None and b is not None and b > a
        }
        if moved:
            detail = ", ".join(f"{n} {k}" for k, n in moved.items())
            out.append(
                ValidityWarning(
                    code="ecc_errors",
                    message=f"{_short(after.uuid)}: {detail} ECC errors during the window",
                    figures={"brief": detail, "device": after.uuid, **moved},
                )
            )
    return out


def event_shares(samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
    """Per device, the share of its samples that carried each clock-event reason."""
    counts: dict[str, dict[str, int]] = {}
    totals: dict[str, int] = {}
    for s in samples:
        if s.reasons is None:
            continue
        totals[s.device] = totals.get(s.device, 0) + 1
        per = counts.setdefault(s.device, {})
        for name, bit in CLOCK_EVENT_BITS.items():
            if s.reasons & bit:
                per[name] = per.get(name, 0) + 1
    return {d: {name: n / totals[d] for name, n in counts.get(d, {}).items()} for d in totals}


def clock_events(samples: Sequence[Sample], limits: GpuLimits) -> list[ValidityWarning]:
    """``clocks_event`` (thermal or hardware slowdown, power brake) and ``power_capped``
    when a reason held for more than ``max_clocks_event`` of the window's samples."""
    out = []
    for device, shares in event_shares(samples).items():
        for code, names in (("clocks_event", SLOWDOWNS), ("power_capped", ("sw_power_cap",))):
            over = {n: shares[n] for n in names if shares.get(n, 0.0) > limits.max_clocks_event}
            if not over:
                continue
            detail = ", ".join(
                f"{n.replace('_', ' ')} {v * 100:.0f}% of the window" for n, v in over.items()
            )
            out.append(
                ValidityWarning(
                    code=code,
                    message=f"{_short(device)}: {detail}",
                    figures={
                        "brief": detail,
                        "device": device,
                        **{n: round(v, 4) for n, v in over.items()},
                    },
                )
            )
    return out


def clock_spread(samples: Sequence[Sample], limits: GpuLimits) -> list[ValidityWarning]:
    """``clocks_varied`` when a GPU's SM clock moved by more than ``max_clock_spread``."""
    out = []
    for device in dict.fromkeys(s.device for s in samples):
        clocks = [s.sm_clock_mhz for s in samples if s.device == device and s.sm_clock_mhz]
        if len(clocks) < 2:
            continue
        spread = (max(clocks) - min(clocks)) / max(clocks)
        if spread > limits.max_clock_spread:
            out.append(
                ValidityWarning(
                    code="clocks_varied",
                    message=f"{_short(device)}: SM clock {min(clocks):.0f}-{max(clocks):.0f} MHz "
                    f"in the window ({spread * 100:.0f}%): clocks are not locked",
                    figures={
                        "brief": f"{min(clocks):.0f}-{max(clocks):.0f} MHz",
                        "device": device,
                        "min_mhz": min(clocks),
                        "max_mhz": max(clocks),
                        "spread": round(spread, 4),
                    },
                )
            )
    return out


def clock_figures(samples: Sequence[Sample]) -> dict[str, dict[str, float]]:
    """Per device, the SM clocks seen in the window (min/mean/max MHz) and event shares."""
    out: dict[str, dict[str, float]] = {}
    for device, shares in event_shares(samples).items():
        out[device] = {f"{n}_share": round(v, 4) for n, v in shares.items()}
    for device in dict.fromkeys(s.device for s in samples):
        clocks = [s.sm_clock_mhz for s in samples if s.device == device and s.sm_clock_mhz]
        if clocks:
            entry = out.setdefault(device, {})
            entry.update(
                sm_mhz_min=min(clocks),
                sm_mhz_mean=sum(clocks) / len(clocks),
                sm_mhz_max=max(clocks),
            )
    return out


def energy_mismatch(
    samples: Sequence[Sample],
    per_device_j: dict[str, float],
    edges: tuple[float, float],
    limits: GpuLimits,
) -> list[ValidityWarning]:
    """``energy_mismatch`` when a GPU's energy counter and the sampled power integrated over
    the same window differ by more than ``max_energy_mismatch`` (needs 10 samples inside)."""
    out = []
    t0, t1 = edges
    for device, counter_j in per_device_j.items():
        inside = [s for s in samples if s.device == device and s.power_w is not None]
        inside = [s for s in inside if t0 <= s.t <= t1]
        if len(inside) < 10 or counter_j <= 0:
            continue
        integral = trapezoid([s.t for s in inside], [s.power_w or 0.0 for s in inside])
        # Scale to the whole window: the first and last samples are not exactly at its edges.
        span = inside[-1].t - inside[0].t
        if span <= 0:
            continue
        sampled_j = integral * (t1 - t0) / span
        diff = (counter_j - sampled_j) / counter_j
        if abs(diff) > limits.max_energy_mismatch:
            out.append(
                ValidityWarning(
                    code="energy_mismatch",
                    message=f"{_short(device)}: energy counter {counter_j:.1f} J vs sampled power "
                    f"integrated {sampled_j:.1f} J ({diff * 100:+.0f}%)",
                    figures={
                        "brief": f"{diff * 100:+.0f}%",
                        "device": device,
                        "counter_j": round(counter_j, 3),
                        "sampled_j": round(sampled_j, 3),
                    },
                )
            )
    return out


def idle_drift(
    now_w: dict[str, float], baseline_w: dict[str, float], limits: GpuLimits
) -> list[ValidityWarning]:
    """``idle_drift`` when a GPU at rest draws more than its baseline by ``max_idle_drift``
    (and by at least ``IDLE_DRIFT_FLOOR_W``)."""
    out = []
    for device, watts in now_w.items():
        base = baseline_w.get(device)
        if base is None or base <= 0:
            continue
        above = watts - base
        if above > max(IDLE_DRIFT_FLOOR_W, limits.max_idle_drift * base):
            out.append(
                ValidityWarning(
                    code="idle_drift",
                    message=f"{_short(device)}: {watts:.0f} W at rest before the item vs "
                    f"{base:.0f} W idle baseline (+{above / base * 100:.0f}%)",
                    figures={
                        "brief": f"+{above / base * 100:.0f}%",
                        "device": device,
                        "idle_w": round(watts, 2),
                        "baseline_w": round(base, 2),
                    },
                )
            )
    return out


def persistence_off(found: Sequence[GpuSettings]) -> list[ValidityWarning]:
    """``persistence_mode_off`` for each GPU whose persistence mode is known to be off."""
    return [
        ValidityWarning(
            code="persistence_mode_off",
            message=f"{s.uuid}: persistence mode is off",
            figures={"device": s.uuid},
        )
        for s in found
        if s.persistence is False
    ]
