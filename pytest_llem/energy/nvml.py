"""NVML access (nvidia-ml-py, module ``pynvml``): device handles, the energy meter, facts.

NVML and CUDA enumerate GPUs in different orders unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, and
on a shared node a wrong index measures a neighbour's job: devices are matched by UUID.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

from pytest_llem.energy import procs
from pytest_llem.energy.base import EnergyReading, MeterInfo
from pytest_llem.measure.stats import trapezoid

_LOCK = threading.Lock()
_INIT_COUNT = 0


class NvmlUnavailable(Exception):  # noqa: N818 - a probe outcome carrying the reason
    """NVML cannot be used here; ``str()`` is the reason recorded in results."""


@dataclass(frozen=True)
class GpuRef:
    """A CUDA device the engine uses: its index as CUDA sees it and, when known, its UUID."""

    cuda_index: int
    uuid: str | None = None


def _error_name(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def load() -> ModuleType:
    """Import pynvml and initialise NVML (reference-counted; pair with ``release``).

    Raises:
        NvmlUnavailable: with the reason, e.g. ``NVMLError_LibraryNotFound``.
    """
    global _INIT_COUNT
    try:
        import pynvml
    except ImportError as exc:
        raise NvmlUnavailable(f"no NVML: nvidia-ml-py is not installed ({exc})") from None
    with _LOCK:
        if _INIT_COUNT == 0:
            try:
                pynvml.nvmlInit()
            except pynvml.NVMLError as exc:
                raise NvmlUnavailable(f"no NVML: {_error_name(exc)}") from None
        _INIT_COUNT += 1
    module: ModuleType = pynvml
    return module


T = TypeVar("T")


def query(fn: Callable[[ModuleType], T], default: T) -> T:
    """``fn(pynvml)`` with NVML loaded and released; ``default`` when NVML cannot answer."""
    try:
        pynvml = load()
    except NvmlUnavailable:
        return default
    try:
        return fn(pynvml)
    except (NvmlUnavailable, pynvml.NVMLError):
        return default
    finally:
        release(pynvml)


def probe_reason() -> str | None:
    """None when NVML initialises here; otherwise why not."""
    try:
        release(load())
    except NvmlUnavailable as exc:
        return str(exc)
    return None


def release(pynvml: ModuleType) -> None:
    """Drop one reference to NVML; shut it down with the last."""
    global _INIT_COUNT
    with _LOCK:
        _INIT_COUNT = max(0, _INIT_COUNT - 1)
        if _INIT_COUNT == 0:
            # Shutting down a lost GPU must not fail the item.
            with contextlib.suppress(pynvml.NVMLError):
                pynvml.nvmlShutdown()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def visible_devices(env: dict[str, str] | None = None) -> list[str] | None:
    """Entries of ``CUDA_VISIBLE_DEVICES`` (None when unset)."""
    raw = (env if env is not None else os.environ).get("CUDA_VISIBLE_DEVICES")
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def resolve_handles(
    pynvml: ModuleType, gpus: list[GpuRef], env: dict[str, str] | None = None
) -> list[tuple[str, Any]]:
    """(UUID, NVML handle) for each CUDA device, matched by UUID.

    Without a UUID from the engine, ``CUDA_VISIBLE_DEVICES`` entries that are UUIDs map
    directly; integer entries map to NVML indices only under ``CUDA_DEVICE_ORDER=PCI_BUS_ID``
    (or when the machine has a single GPU), because CUDA's default order differs from NVML's.

    Raises:
        NvmlUnavailable: when a device cannot be matched unambiguously.
    """
    env = dict(os.environ) if env is None else env
    visible = visible_devices(env)
    out: list[tuple[str, Any]] = []
    for gpu in gpus:
        try:
            if gpu.uuid:
                handle = pynvml.nvmlDeviceGetHandleByUUID(gpu.uuid)
            else:
                handle = _handle_by_index(pynvml, gpu.cuda_index, visible, env)
            out.append((_text(pynvml.nvmlDeviceGetUUID(handle)), handle))
        except pynvml.NVMLError as exc:
            raise NvmlUnavailable(
                f"cannot open GPU cuda:{gpu.cuda_index}: {_error_name(exc)}"
            ) from None
    return out


def _handle_by_index(
    pynvml: ModuleType, cuda_index: int, visible: list[str] | None, env: dict[str, str]
) -> Any:
    entry = visible[cuda_index] if visible is not None and cuda_index < len(visible) else None
    if entry is not None and entry.startswith(("GPU-", "MIG-")):
        return pynvml.nvmlDeviceGetHandleByUUID(entry)
    nvml_index = int(entry) if entry is not None else cuda_index
    pci_order = env.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID"
    if not pci_order and pynvml.nvmlDeviceGetCount() > 1:
        raise NvmlUnavailable(
            f"cannot match CUDA device {cuda_index} to an NVML device: CUDA and NVML order GPUs "
            "differently; set CUDA_DEVICE_ORDER=PCI_BUS_ID or CUDA_VISIBLE_DEVICES to GPU UUIDs"
        )
    return pynvml.nvmlDeviceGetHandleByIndex(nvml_index)


def all_handles(pynvml: ModuleType) -> list[tuple[str, Any]]:
    """(UUID, handle) of every GPU NVML sees, honouring CUDA_VISIBLE_DEVICES when it is set."""
    visible = visible_devices()
    if visible is not None:
        return resolve_handles(pynvml, [GpuRef(i) for i in range(len(visible))])
    handles = []
    for index in range(pynvml.nvmlDeviceGetCount()):
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        handles.append((_text(pynvml.nvmlDeviceGetUUID(handle)), handle))
    return handles


def supports_counter(pynvml: ModuleType, handle: Any) -> bool:
    """True when the total-energy counter works on this GPU (Volta and newer)."""
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError_NotSupported:
        return False
    return True


class _PowerPoller:
    """Background power polling for GPUs without the energy counter."""

    def __init__(
        self, pynvml: ModuleType, handles: list[tuple[str, Any]], interval_s: float
    ) -> None:
        self.pynvml = pynvml
        self.handles = handles
        self.interval_s = interval_s
        self.samples: dict[str, list[tuple[float, float]]] = {u: [] for u, _ in handles}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="llem-power-poller", daemon=True)

    def _sample(self) -> None:
        now = time.perf_counter()
        for uuid, handle in self.handles:
            watts = self.pynvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
            self.samples[uuid].append((now, watts))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> None:
        self._sample()  # an edge sample at the window start
        self._thread.start()

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        self._sample()  # and one at the end
        return {
            uuid: trapezoid([t for t, _ in s], [w for _, w in s])
            for uuid, s in self.samples.items()
        }


class NvmlMeter:
    """Energy of a window on every GPU the engine uses: counter deltas, or polled power."""

    def __init__(
        self, pynvml: ModuleType, handles: list[tuple[str, Any]], interval_s: float
    ) -> None:
        self.pynvml = pynvml
        self.handles = handles
        self.interval_s = interval_s
        self.counter = all(supports_counter(pynvml, h) for _, h in handles)
        if self.counter:
            self.info = MeterInfo(source="nvml", method="counter", resolution_j=0.001)
        else:
            self.info = MeterInfo(
                source="nvml", method=f"polling@{interval_s * 1000:g}ms", resolution_j=None
            )
        self._start: dict[str, int] = {}
        self._poller: _PowerPoller | None = None
        self._t0 = 0.0

    def start(self) -> None:
        """Read every counter (or start polling) at the window's opening edge."""
        self._t0 = time.perf_counter()
        if self.counter:
            self._start = {
                u: self.pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for u, h in self.handles
            }
        else:
            self._poller = _PowerPoller(self.pynvml, self.handles, self.interval_s)
            self._poller.start()

    def stop(self) -> EnergyReading:
        """Read the counters again (or integrate the polled power) and return joules per GPU."""
        if self.counter:
            per_device = {
                u: (self.pynvml.nvmlDeviceGetTotalEnergyConsumption(h) - self._start[u]) / 1000.0
                for u, h in self.handles
            }
        else:
            assert self._poller is not None
            per_device = self._poller.stop()
        duration = time.perf_counter() - self._t0
        return EnergyReading(
            total_j=sum(per_device.values()), per_device_j=per_device, duration_s=duration
        )

    def close(self) -> None:
        """Release NVML."""
        release(self.pynvml)


def device_facts(pynvml: ModuleType, handles: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """(warning code, message) for conditions that make a GPU measurement less trustworthy."""
    out: list[tuple[str, str]] = []
    own = procs.own_tree()  # our children (vLLM's engine processes) are not "others"
    for uuid, handle in handles:
        try:
            if pynvml.nvmlDeviceGetPersistenceMode(handle) == pynvml.NVML_FEATURE_DISABLED:
                out.append(("persistence_mode_off", f"{uuid}: persistence mode is off"))
        except pynvml.NVMLError:
            pass  # not supported on this GPU/OS: nothing to report
        try:
            running = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
        except pynvml.NVMLError:
            running = []
        others = sorted({p.pid for p in running if p.pid not in own})
        if others:
            out.append(("other_processes", f"{uuid}: other processes use this GPU: pids {others}"))
    return out


def fingerprint(pynvml: ModuleType, handles: list[tuple[str, Any]]) -> str:
    """Hardware identity of the GPUs: model, driver major, power limit (W)."""
    driver = _text(pynvml.nvmlSystemGetDriverVersion()).split(".")[0]
    parts = []
    for _, handle in handles:
        name = _text(pynvml.nvmlDeviceGetName(handle))
        try:
            limit = round(pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0)
        except pynvml.NVMLError:
            limit = 0
        parts.append(f"{name}/{limit}W")
    return f"gpu:{'+'.join(parts)}|driver{driver}"
