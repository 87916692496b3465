"""What NVML says about the GPUs beyond energy: conditions that weaken a measurement, and the
hardware fingerprint that keys baselines."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pytest_llem.energy import procs
from pytest_llem.energy.nvml import as_text


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
    driver = as_text(pynvml.nvmlSystemGetDriverVersion()).split(".")[0]
    parts = []
    for _, handle in handles:
        name = as_text(pynvml.nvmlDeviceGetName(handle))
        try:
            limit = round(pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0)
        except pynvml.NVMLError:
            limit = 0
        parts.append(f"{name}/{limit}W")
    return f"gpu:{'+'.join(parts)}|driver{driver}"
