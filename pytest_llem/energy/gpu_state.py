"""The state of a GPU that decides whether its window can be trusted, read through NVML.

Settings that rarely change (persistence mode, application clocks, the maximum SM clock, ECC
mode) are cached per device; what changes (processes, ECC counters, power, the SM clock) is
read at each window's edges, and the clock-event reasons and SM clock are sampled through the
window by ``energy.sampler``. Every call is guarded: consumer GPUs answer NotSupported, old
drivers FunctionNotFound and unprivileged containers NoPermission, and each becomes "not
available" (None), never an error. The findings are pure functions of these readings
(``energy.gpu_findings``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pytest_llem.energy.nvml import as_text
from pytest_llem.energy.sampler import Sample

GIB = 1024**3
SETTINGS_TTL_S = 300.0
# An SM clock at rest of at least this share of its maximum reads as locked (at_rest).
LOCKED_AT_REST = 0.5


def get(pynvml: ModuleType, name: str, *args: Any) -> Any | None:
    """``pynvml.<name>(*args)``, or None where the GPU, driver or bindings cannot answer."""
    fn = getattr(pynvml, name, None)
    if fn is None:
        return None  # the bindings predate the call
    try:
        return fn(*args)
    except pynvml.NVMLError:  # NotSupported, FunctionNotFound, NoPermission, ...
        return None


@dataclass(frozen=True)
class GpuSettings:
    """What rarely changes: read once per device and cached (``settings``)."""

    uuid: str
    index: int | None
    persistence: bool | None
    app_clock_mhz: int | None  # applications clock of graphics (``nvidia-smi -ac``)
    default_app_clock_mhz: int | None
    max_sm_clock_mhz: int | None

    @property
    def app_clocks_set(self) -> bool | None:
        """True when application clocks differ from their default; None when unknown."""
        if self.app_clock_mhz is None or self.default_app_clock_mhz is None:
            return None
        return self.app_clock_mhz != self.default_app_clock_mhz


# By the NVML module and device: a test's fake module never sees another's settings.
_CACHE: dict[tuple[int, str], tuple[float, GpuSettings]] = {}


def settings(pynvml: ModuleType, uuid: str, handle: Any, now: float | None = None) -> GpuSettings:
    """The device's settings, read at most every ``SETTINGS_TTL_S`` seconds."""
    now = time.monotonic() if now is None else now
    key = (id(pynvml), uuid)
    cached = _CACHE.get(key)
    if cached is not None and now - cached[0] < SETTINGS_TTL_S:
        return cached[1]
    mode = get(pynvml, "nvmlDeviceGetPersistenceMode", handle)
    graphics = pynvml.NVML_CLOCK_GRAPHICS
    found = GpuSettings(
        uuid=uuid,
        index=get(pynvml, "nvmlDeviceGetIndex", handle),
        persistence=None if mode is None else mode == pynvml.NVML_FEATURE_ENABLED,
        app_clock_mhz=get(pynvml, "nvmlDeviceGetApplicationsClock", handle, graphics),
        default_app_clock_mhz=get(
            pynvml, "nvmlDeviceGetDefaultApplicationsClock", handle, graphics
        ),
        max_sm_clock_mhz=get(pynvml, "nvmlDeviceGetMaxClockInfo", handle, pynvml.NVML_CLOCK_SM),
    )
    _CACHE[key] = (now, found)
    return found


@dataclass(frozen=True)
class GpuProcess:
    """A compute process on a GPU."""

    pid: int
    name: str
    memory_bytes: int | None  # None where NVML cannot say (WDDM, some containers)

    def describe(self) -> str:
        """``pid 4242 (python) 3.1 GiB``."""
        memory = "memory n/a" if self.memory_bytes is None else f"{self.memory_bytes / GIB:.1f} GiB"
        return f"pid {self.pid} ({self.name}) {memory}"


def process_name(pid: int, pynvml: ModuleType, proc: Path = Path("/proc")) -> str:
    """The process's name from /proc, else from NVML (another PID namespace), else ``?``."""
    try:
        return (proc / str(pid) / "comm").read_text().strip() or "?"
    except OSError:
        name = get(pynvml, "nvmlSystemGetProcessName", pid)
        return Path(as_text(name)).name if name else "?"


@dataclass(frozen=True)
class GpuState:
    """What changes: read at a window's edges."""

    uuid: str
    power_w: float | None
    sm_clock_mhz: float | None
    ecc_corrected: int | None  # volatile counters (since the driver loaded)
    ecc_uncorrected: int | None
    processes: tuple[GpuProcess, ...] | None  # None: NVML cannot list them here


def read_state(pynvml: ModuleType, uuid: str, handle: Any, proc: Path = Path("/proc")) -> GpuState:
    """Read one GPU's state now."""
    power = get(pynvml, "nvmlDeviceGetPowerUsage", handle)
    clock = get(pynvml, "nvmlDeviceGetClockInfo", handle, pynvml.NVML_CLOCK_SM)

    def ecc(kind: int) -> int | None:
        value = get(pynvml, "nvmlDeviceGetTotalEccErrors", handle, kind, pynvml.NVML_VOLATILE_ECC)
        return None if value is None else int(value)

    running = get(pynvml, "nvmlDeviceGetComputeRunningProcesses", handle)
    processes = None
    if running is not None:
        processes = tuple(
            GpuProcess(
                int(p.pid),
                process_name(int(p.pid), pynvml, proc),
                None if getattr(p, "usedGpuMemory", None) is None else int(p.usedGpuMemory),
            )
            for p in running
        )
    return GpuState(
        uuid=uuid,
        power_w=None if power is None else power / 1000.0,
        sm_clock_mhz=None if clock is None else float(clock),
        ecc_corrected=ecc(pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED),
        ecc_uncorrected=ecc(pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED),
        processes=processes,
    )


class GpuWatch:
    """The GPU half of a window's checks: states at its edges, samples through it."""

    def __init__(
        self,
        pynvml: ModuleType,
        handles: list[tuple[str, Any]],
        samples: Callable[[], list[Sample]],
        proc: Path = Path("/proc"),
    ) -> None:
        self.pynvml = pynvml
        self.handles = handles
        self.samples = samples
        self.proc = proc

    def settings(self) -> list[GpuSettings]:
        """Each GPU's (cached) settings."""
        return [settings(self.pynvml, u, h) for u, h in self.handles]

    def states(self) -> list[GpuState]:
        """Each GPU's state now."""
        return [read_state(self.pynvml, u, h, self.proc) for u, h in self.handles]

    def power_now(self) -> dict[str, float]:
        """Each GPU's power now (W), where it can be read."""
        return {s.uuid: s.power_w for s in self.states() if s.power_w is not None}


def at_rest(
    pynvml: ModuleType, uuid: str, handle: Any, own: set[int] | frozenset[int]
) -> tuple[list[str], list[str]]:
    """A GPU's state before anything runs: (what it is, and the command that fixes each
    condition that weakens a measurement). NVML cannot read a ``-lgc`` lock itself: an SM
    clock at rest of at least ``LOCKED_AT_REST`` of its maximum is read as locked."""
    found = settings(pynvml, uuid, handle)
    state = read_state(pynvml, uuid, handle)
    gpu = f"-i {found.index}" if found.index is not None else f"-i {uuid}"
    said: list[str] = []
    fixes: list[str] = []
    if found.persistence is None:
        said.append("persistence n/a")
    elif found.persistence:
        said.append("persistence on")
    else:
        said.append("persistence off")
        fixes.append(f"sudo nvidia-smi {gpu} -pm 1")
    said.append(_clocks_text(found, state, gpu, fixes))
    others = [p for p in state.processes or () if p.pid not in own]
    if state.processes is None:
        said.append("processes n/a")
    elif others:
        said.append("other processes: " + ", ".join(p.describe() for p in others))
        fixes.append("stop them (nvidia-smi lists them) or pick another GPU")
    else:
        said.append("no other processes")
    return said, fixes


def _clocks_text(found: GpuSettings, state: GpuState, gpu: str, fixes: list[str]) -> str:
    top, now = found.max_sm_clock_mhz, state.sm_clock_mhz
    if found.app_clocks_set:
        return f"application clocks set ({found.app_clock_mhz} MHz)"
    # An unlocked GPU at rest drops to a few hundred MHz (345 on an H100); a locked one stays.
    if top and now and now >= LOCKED_AT_REST * top:
        return f"clocks look locked (SM {now:.0f} MHz at rest, max {top})"
    lock = found.default_app_clock_mhz or top
    if lock:
        fixes.append(f"sudo nvidia-smi {gpu} --lock-gpu-clocks={lock},{lock}")
    seen = f"SM {now:.0f} of {top} MHz at rest" if now and top else "clocks n/a"
    return f"clocks not locked ({seen})"
