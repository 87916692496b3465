"""NVML access (nvidia-ml-py, module ``pynvml``): loading, reference counting, device handles.

The meter is in ``nvml_meter``, device facts and fingerprints in ``nvml_facts``.

NVML and CUDA enumerate GPUs in different orders unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, and
on a shared node a wrong index measures a neighbour's job: devices are matched by UUID.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from pytest_llem.devices import GpuRef

_LOCK = threading.Lock()
_INIT_COUNT = 0

__all__ = [
    "GpuRef",
    "NvmlUnavailable",
    "PowerReader",
    "load",
    "query",
    "release",
    "resolve_handles",
]


class NvmlUnavailable(Exception):  # noqa: N818 - a probe outcome carrying the reason
    """NVML cannot be used here; ``str()`` is the reason recorded in results."""


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


def as_text(value: Any) -> str:
    """NVML strings are bytes in old bindings and str in new ones."""
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
            out.append((as_text(pynvml.nvmlDeviceGetUUID(handle)), handle))
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
        handles.append((as_text(pynvml.nvmlDeviceGetUUID(handle)), handle))
    return handles


def supports_counter(pynvml: ModuleType, handle: Any) -> bool:
    """True when the total-energy counter works on this GPU (Volta and newer)."""
    try:
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except pynvml.NVMLError_NotSupported:
        return False
    return True


# nvmlFieldValue_t.valueType -> the member of its value union that holds the number.
_VALUE_MEMBERS = {
    "NVML_VALUE_TYPE_DOUBLE": "dVal",
    "NVML_VALUE_TYPE_UNSIGNED_INT": "uiVal",
    "NVML_VALUE_TYPE_UNSIGNED_LONG": "ulVal",
    "NVML_VALUE_TYPE_UNSIGNED_LONG_LONG": "ullVal",
    "NVML_VALUE_TYPE_SIGNED_LONG_LONG": "sllVal",
    "NVML_VALUE_TYPE_SIGNED_INT": "siVal",
    "NVML_VALUE_TYPE_UNSIGNED_SHORT": "usVal",
}


def field_number(pynvml: ModuleType, value: Any) -> float:
    """The number in one ``nvmlFieldValue_t``, read through the union member its type names.

    Raises:
        pynvml.NVMLError: the field's own return code when it is not NVML_SUCCESS (the call
            succeeds and marks each unsupported field, e.g. NotSupported before R530 drivers).
    """
    if value.nvmlReturn != pynvml.NVML_SUCCESS:
        raise pynvml.NVMLError(value.nvmlReturn)
    for type_name, member in _VALUE_MEMBERS.items():
        if getattr(pynvml, type_name, None) == value.valueType:
            return float(getattr(value.value, member))
    raise pynvml.NVMLError(pynvml.NVML_ERROR_UNKNOWN)


def instant_power_mw(pynvml: ModuleType, handle: Any) -> float:
    """``NVML_FI_DEV_POWER_INSTANT`` in mW, through ``nvmlDeviceGetFieldValues``.

    Raises:
        pynvml.NVMLError: the driver lacks the call or the field (NotSupported, FunctionNotFound).
        AttributeError: nvidia-ml-py predates the field.
    """
    field = pynvml.NVML_FI_DEV_POWER_INSTANT
    return field_number(pynvml, pynvml.nvmlDeviceGetFieldValues(handle, [field])[0])


AVERAGED_POWER = (
    "nvmlDeviceGetPowerUsage (a 1 s average on Ampere except GA100 and newer, so an "
    "integration of it lags the window)"
)


class PowerReader:
    """Instant power of one GPU: ``NVML_FI_DEV_POWER_INSTANT`` where the GPU and driver have
    it, else ``nvmlDeviceGetPowerUsage``; ``source`` says which, and why when it fell back.

    ``nvmlDeviceGetPowerUsage`` returns a one-second average on Ampere (except GA100) and
    newer, so integrating it over a short window smears the window by about half a second.
    """

    def __init__(self, pynvml: ModuleType, handle: Any) -> None:
        self.pynvml = pynvml
        self.handle = handle
        self.instant = True
        self.source = "NVML_FI_DEV_POWER_INSTANT"
        try:
            instant_power_mw(pynvml, handle)
        except (pynvml.NVMLError, AttributeError) as exc:
            self.instant = False
            self.source = f"{AVERAGED_POWER}; the instant field is unavailable: {_error_name(exc)}"

    def watts(self) -> float:
        """One reading in W."""
        if self.instant:
            return instant_power_mw(self.pynvml, self.handle) / 1000.0
        return float(self.pynvml.nvmlDeviceGetPowerUsage(self.handle)) / 1000.0
