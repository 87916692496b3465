"""What NVML says about the GPUs beyond energy: conditions that weaken a measurement, and the
hardware fingerprint that keys baselines."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pytest_llem.energy import gpu_findings, gpu_state, procs
from pytest_llem.energy.nvml import as_text


def device_facts(pynvml: ModuleType, handles: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """(warning code, message) for conditions that make a GPU measurement less trustworthy
    now: persistence mode off, processes that are not ours (``energy.gpu_findings``)."""
    own = procs.own_tree()  # our children (vLLM's engine processes) are not "others"
    found = gpu_findings.persistence_off([gpu_state.settings(pynvml, u, h) for u, h in handles])
    states = [gpu_state.read_state(pynvml, u, h) for u, h in handles]
    found += gpu_findings.foreign_processes(states, own)
    return [(w.code, w.message) for w in found]


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
