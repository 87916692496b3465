"""Facts about this machine, probed once per session: visible GPUs and their free memory,
hardware fingerprints (which key baselines), which energy sources work, and whatever a
backend's pre-flight asks to remember (``Host.fact``: torch's CUDA, the vLLM build, ...)."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pytest_llem.energy import nvml
from pytest_llem.energy.nvml_facts import fingerprint
from pytest_llem.energy.select import probe

T = TypeVar("T")


class Host:
    """Facts about this machine, probed once per session."""

    @cached_property
    def gpus(self) -> tuple[list[float], str | None]:
        """(free MB per visible GPU, reason when NVML sees none)."""
        try:
            pynvml = nvml.load()
        except nvml.NvmlUnavailable as exc:
            return [], str(exc)
        try:
            handles = nvml.all_handles(pynvml)
            free = [pynvml.nvmlDeviceGetMemoryInfo(h).free / 1e6 for _, h in handles]
        except (nvml.NvmlUnavailable, pynvml.NVMLError) as exc:
            return [], f"no usable GPU: {exc}"
        finally:
            nvml.release(pynvml)
        return free, None if free else "NVML sees no GPU"

    def fact(self, name: str, probe: Callable[[], T]) -> T:
        """A backend's fact about this machine, probed on first use and kept for the session.

        Args:
            name: a key the backend owns (prefixed with its name, e.g. ``vllm.build``).
            probe: what finds the fact; may import the backend's library (run time only).
        """
        facts: dict[str, Any] = self.__dict__.setdefault("_facts", {})
        if name not in facts:
            facts[name] = probe()
        value: T = facts[name]
        return value

    def known(self, name: str) -> Any:
        """A fact already probed (None when nobody asked for it yet): never probes."""
        return self.__dict__.get("_facts", {}).get(name)

    def hardware(self, device: str) -> str:
        """Hardware fingerprint: GPU models, driver major and power limits; or the CPU model."""
        cache = self.__dict__.setdefault("_hardware", {})
        if device not in cache:
            cache[device] = _gpu_fingerprint() if device == "cuda" else _cpu_fingerprint()
        result: str = cache[device]
        return result

    def energy_reason(self, source: str) -> str | None:
        """Why an energy source cannot be used here (cached per source)."""
        cache = self.__dict__.setdefault("_energy", {})
        if source not in cache:
            cache[source] = probe(source)
        result: str | None = cache[source]
        return result


def _gpu_fingerprint() -> str:
    return nvml.query(lambda pynvml: fingerprint(pynvml, nvml.all_handles(pynvml)), "gpu:unknown")


def _cpu_fingerprint() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass  # not Linux: platform's answer stands
    return f"cpu:{model}|{os.cpu_count()} cores"
