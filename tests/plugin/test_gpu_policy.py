"""GPU pre-flight policy and validity verdicts through real sessions."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.host import needs_no_rapl

StudyText = Callable[..., str]


@pytest.fixture
def cuda_study(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText, fake_nvml: object
) -> Path:
    # A GPU-less host whatever this machine is: the in-process session sees the fake NVML,
    # which reports no GPU (on a GPU runner the real one would run the items).
    text = fast_study(tiny_gpt2).replace("device: cpu", "device: cuda")
    return pytester.makefile(".yaml", study_gpu=text)


def test_gpu_items_skip_on_a_machine_without_gpu(
    pytester: pytest.Pytester, cuda_study: Path
) -> None:
    result = pytester.runpytest("-rs", "--llem-results=out")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*no CUDA GPU: *"])


def test_require_gpu_turns_the_skip_into_a_failure(
    pytester: pytest.Pytester, cuda_study: Path
) -> None:
    result = pytester.runpytest("--llem-require-gpu", "--llem-results=out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*PreflightError: pre-flight failed:*", "*?gpu? no CUDA GPU*"])
    item = json.loads((pytester.path / "out" / "report.json").read_text())["items"][0]
    assert item["outcome"] == "failed" and "no CUDA GPU" in item["message"]


def test_require_gpu_from_ini(pytester: pytest.Pytester, cuda_study: Path) -> None:
    pytester.makeini("[pytest]\nllem_require_gpu = true\n")
    pytester.runpytest("--llem-results=out").assert_outcomes(failed=1)


@needs_no_rapl
def test_explicit_energy_source_missing_skips_then_fails(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makefile(".yaml", study_cpu=fast_study(tiny_gpt2))
    result = pytester.runpytest("-rs", "--llem-energy=rapl", "--llem-results=out")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*energy.backend rapl is unavailable: no RAPL*"])
    pytester.runpytest(
        "--llem-energy=rapl", "--llem-require-gpu", "--llem-results=out"
    ).assert_outcomes(failed=1)


def test_energy_null_says_disabled(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makefile(".yaml", study_cpu=fast_study(tiny_gpt2))
    pytester.runpytest("--llem-energy=null", "--llem-results=out").assert_outcomes(passed=1)
    item = json.loads((pytester.path / "out" / "report.json").read_text())["items"][0]
    assert item["energy"]["reason"] == "energy measurement disabled (energy.backend: null)"


def test_bad_energy_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--llem-energy=solar")
    result.stderr.fnmatch_lines(["*--llem-energy must be one of*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_validity_fail_on_fails_the_item_but_keeps_its_numbers(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    text = fast_study(tiny_gpt2).replace(
        "validity: {min_window_s: 0, min_samples: 0}",
        "validity: {min_samples: 100, min_window_s: 0, fail_on: [few_samples]}",
    )
    pytester.makefile(".yaml", study_v=text)
    result = pytester.runpytest("--llem-results=out")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*ValidityFailure: validity warnings marked fail_on:*", "*few_samples: 4 requests < 100*"]
    )
    item = json.loads((pytester.path / "out" / "report.json").read_text())["items"][0]
    assert item["outcome"] == "failed" and item["metrics"]["output_tokens"] > 0
    # Only few_samples is certain: on a loaded machine the tiny model's batch latency may not
    # settle during warmup, which adds warmup_not_converged (true, and not fail_on here).
    codes = [w["code"] for w in item["warnings"]]
    assert "few_samples" in codes and set(codes) <= {"few_samples", "warmup_not_converged"}
