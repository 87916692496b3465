"""Real GPU measurements (the `gpu` tox env on a self-hosted GPU runner). Skipped elsewhere."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.host import needs_nvml

pytestmark = needs_nvml


def test_real_nvml_energy_on_a_tiny_model(
    pytester: pytest.Pytester, tiny_llama: Path, fast_study: Callable[..., str]
) -> None:
    text = (
        fast_study(tiny_llama)
        .replace("device: cpu", "device: cuda")
        .replace("window: {min_duration_s: 0}", "window: {min_duration_s: 5}")
    )
    pytester.makefile(".yaml", study_gpu=text + "sweep:\n  precision: [fp16, bf16]\n")
    result = pytester.runpytest(
        "--llem-require-gpu", "--llem-results=out", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    for item in json.loads((pytester.path / "out" / "report.json").read_text())["items"]:
        assert item["energy"]["source"] == "nvml"
        assert item["metrics"]["energy_j"] > 0
        assert item["metrics"]["energy_per_output_token_j"] > 0
        assert item["energy"]["per_device_j"]
        assert item["sampler"]["samples"] > 0
