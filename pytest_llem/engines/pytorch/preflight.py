"""Pre-flight checks of backend ``pytorch`` (run locally, once torch and transformers import)."""

from __future__ import annotations

from pytest_llem.preflight.check import Check
from pytest_llem.preflight.host import Host
from pytest_llem.study.experiment import ExperimentConfig


def torch_cuda_problem() -> str | None:
    """None when torch sees CUDA; otherwise why not (imports torch: run time only)."""
    try:
        import torch
    except ImportError:
        return None  # reported by the package check
    if torch.cuda.is_available():
        return None
    return f"torch {torch.__version__} sees no CUDA device (a CPU-only build?)"


def checks(config: ExperimentConfig, host: Host) -> list[Check]:
    """A cuda point needs a CUDA build of torch."""
    # Only when NVML sees a GPU: without one, "no CUDA GPU" already says it all.
    if config.device != "cuda" or host.gpus[1] is not None:
        return []
    problem = host.fact("pytorch.torch_cuda", torch_cuda_problem)
    return [Check("gpu", problem, "install a CUDA build of torch")] if problem else []
