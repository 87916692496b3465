"""benchmarks/vllm beside a vLLM that is not a CPU build (a CUDA ``vllm`` on a GPU runner): the
CPU vLLM study's items skip with the reason instead of failing pre-flight, and the SmolLM2
export happens only for a study item about to run, never at collection."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "vllm"

# A CUDA vLLM as vLLM itself reports it (vllm.platforms.current_platform.device_type).
FAKE_VLLM = {
    "vllm/__init__.py": '__version__ = "0.32.0"\n',
    "vllm/platforms/__init__.py": (
        "class CudaPlatform:\n    device_type = 'cuda'\n\ncurrent_platform = CudaPlatform()\n"
    ),
}
# Records an export instead of spending 90 s on one.
RECORD_EXPORT = """
import pytest_llem.testing as testing

def export_alias(alias, target):
    open("EXPORTED", "w").write(alias)
    raise RuntimeError("no export in this test")

testing.export_alias = export_alias
"""


@pytest.fixture
def bench(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for rel, text in FAKE_VLLM.items():
        (pytester.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / rel).write_text(text)
    target = pytester.path / "benchmarks" / "vllm"
    target.mkdir(parents=True)
    for name in ("conftest.py", "study_cpu_vllm.yaml"):
        shutil.copy(BENCH / name, target / name)
    pytester.makeconftest(RECORD_EXPORT)
    # The fake vllm shadows any real one in the subprocess.
    inherited = os.environ.get("PYTHONPATH")
    paths = [str(pytester.path), *([inherited] if inherited else [])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))
    return pytester


def test_a_deselected_cpu_vllm_study_exports_nothing(bench: pytest.Pytester) -> None:
    result = bench.runpytest_subprocess("benchmarks", "-m", "gpu", "-p", "no:cacheprovider")
    assert result.ret == 5  # nothing selected; the study was collected, then deselected
    assert "deselected" in result.stdout.str()
    assert not (bench.path / "EXPORTED").exists()


def test_beside_a_cuda_vllm_the_cpu_study_skips_with_the_reason(bench: pytest.Pytester) -> None:
    result = bench.runpytest_subprocess(
        "benchmarks", "-rs", "-p", "no:cacheprovider", "--llem-results=out"
    )
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        ["*the CPU vLLM study needs a CPU build of vLLM*found vLLM 0.32.0*platform cuda*"]
    )
    assert not (bench.path / "EXPORTED").exists()
