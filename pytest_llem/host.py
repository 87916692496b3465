"""Facts about this machine, probed once per session: visible GPUs and their free memory,
whether torch sees CUDA, the installed vLLM build, hardware fingerprints (which key baselines),
and which energy sources work."""

from __future__ import annotations

import os
import platform
from functools import cached_property
from pathlib import Path

from pytest_llem.energy import nvml
from pytest_llem.energy.nvml_facts import fingerprint
from pytest_llem.energy.select import probe
from pytest_llem.engines.vllm_compat import VllmBuild, installed_build


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

    @cached_property
    def torch_cuda(self) -> str | None:
        """None when torch sees CUDA; otherwise why not (imports torch: run-time only)."""
        try:
            import torch
        except ImportError:
            return None  # reported by the backend check
        if torch.cuda.is_available():
            return None
        return f"torch {torch.__version__} sees no CUDA device (a CPU-only build?)"

    @cached_property
    def vllm_build(self) -> VllmBuild | str:
        """The installed vLLM build and platform, or why none (imports vllm: run-time only)."""
        return installed_build()

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
