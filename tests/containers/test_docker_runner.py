"""Ephemeral and persistent containers for real (podman's Docker API in CI)."""

from __future__ import annotations

import json
import signal
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.containers
StudyText = Callable[..., str]
TEST_IMAGE = "localhost/llem-test:latest"
RUNNER = f"--llem-runner=docker:{TEST_IMAGE}"


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "out" / "report.json").read_text())  # type: ignore[no-any-return]


def script(pytester: pytest.Pytester, name: str, body: str) -> Path:
    """An executable stand-in for the container's python (lives in a mounted directory)."""
    path = pytester.path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def study(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText, container_ini: str
) -> Path:
    return pytester.makefile(".yaml", study_c=fast_study(tiny_gpt2, "sweep:\n  n: [2, 3]\n"))


def test_ephemeral_runs_each_item_in_its_own_container(
    pytester: pytest.Pytester,
    study: Path,
    llem_containers: Callable[[], list[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A temp dir of this test's own: tests running in parallel make exchange dirs too.
    scratch = pytester.path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    result = pytester.runpytest("--llem-results=out", RUNNER)
    result.assert_outcomes(passed=2)
    items = report(pytester)["items"]
    runners = [i["runner"] for i in items]
    assert all(
        r["type"] == "docker" and r["strategy"] == "ephemeral" and r["source"] == "cli"
        for r in runners
    )
    assert runners[0]["container_id"] != runners[1]["container_id"]
    assert runners[0]["image"] == TEST_IMAGE and runners[0]["image_digest"]
    assert all(i["metrics"]["output_tokens"] > 0 for i in items)
    assert llem_containers() == []  # removed
    assert list(scratch.glob("llem-*")) == []  # exchange directories removed on success


def test_persistent_reuses_one_container_and_tears_it_down(
    pytester: pytest.Pytester,
    study: Path,
    llem_containers: Callable[[], list[Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scratch = pytester.path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    result = pytester.runpytest(
        "--llem-results=out", RUNNER, "--llem-container-strategy=persistent"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["note: persistent containers:*share GPU memory*"])
    runners = [i["runner"] for i in report(pytester)["items"]]
    assert {r["strategy"] for r in runners} == {"persistent"}
    assert runners[0]["container_id"] == runners[1]["container_id"]
    assert llem_containers() == []
    assert list(scratch.iterdir()) == []  # its exchange root went with it


@pytest.mark.parametrize("strategy", ["ephemeral", "persistent"])
def test_a_container_that_cannot_start_is_an_error_and_is_removed(
    pytester: pytest.Pytester,
    study: Path,
    llem_containers: Callable[[], list[Any]],
    container_ini: str,
    strategy: str,
) -> None:
    # The runtime refuses to start a command the image does not have: the SDK's
    # containers.run would leave the created container behind.
    pytester.makeini(
        container_ini.replace(
            f"llem_docker_python = {sys.executable}", "llem_docker_python = /no/python"
        )
    )
    result = pytester.runpytest(
        "--llem-results=out", RUNNER, f"--llem-container-strategy={strategy}"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) == 0 and outcomes.get("failed", 0) == 2, outcomes
    result.stdout.fnmatch_lines(["*/no/python*"])
    assert llem_containers() == []  # not even in the created state


def test_persistent_without_teardown_says_how_to_remove(
    pytester: pytest.Pytester,
    study: Path,
    llem_containers: Callable[[], list[Any]],
    container_ini: str,
) -> None:
    pytester.makeini(container_ini + "llem_persistent_auto_teardown = false\n")
    result = pytester.runpytest(
        "--llem-results=out", RUNNER, "--llem-container-strategy=persistent"
    )
    result.assert_outcomes(passed=2)
    left = llem_containers()
    try:
        assert len(left) == 1
        result.stdout.fnmatch_lines(
            [f"*left running: remove it with `docker rm -f {left[0].id[:12]}`*"]
        )
    finally:
        for box in left:
            box.remove(force=True)


def test_error_json_reaches_the_failure_and_the_exchange_dir_is_kept(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText, container_ini: str
) -> None:
    # A missing file is a collection error; a broken one is found only when read, inside.
    (pytester.path / "broken.jsonl").write_text("not json\n")
    pytester.makefile(
        ".yaml", study_e=fast_study(tiny_gpt2, "experiments:\n  - {dataset: broken.jsonl}\n")
    )
    result = pytester.runpytest("--llem-results=out", RUNNER)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*ContainerError: the experiment failed in the container: DatasetError: */broken.jsonl:1: not valid JSON*",
            "*exchange dir kept for debugging: *llem-*",
            "*container output (last lines):*",
        ]
    )
    kept = Path(
        next(
            line.split(": ", 1)[1].strip()
            for line in result.stdout.lines
            if "exchange dir kept" in line
        )
    )
    error = json.loads(next(kept.glob("*_error.json")).read_text())
    assert error["type"] == "DatasetError" and "Traceback" in error["traceback"]


def test_non_zero_exit_without_result(
    pytester: pytest.Pytester, study: Path, container_ini: str
) -> None:
    fake = script(pytester, "fake-python", "echo 'exec format trouble' >&2; exit 3")
    pytester.makeini(
        container_ini.replace(
            f"llem_docker_python = {sys.executable}", f"llem_docker_python = {fake}"
        )
    )
    result = pytester.runpytest("--llem-results=out", RUNNER, "-k", "n2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*ContainerError: the container exited with code 3 and wrote no result*",
            "*exec format trouble*",
        ]
    )


def test_exit_137_is_an_oom_error(
    pytester: pytest.Pytester, study: Path, container_ini: str
) -> None:
    fake = script(
        pytester, "killed-python", "exit 137  # what the engine reports after a SIGKILL/OOM kill"
    )
    pytester.makeini(
        container_ini.replace(
            f"llem_docker_python = {sys.executable}", f"llem_docker_python = {fake}"
        )
    )
    result = pytester.runpytest("--llem-results=out", RUNNER, "-k", "n2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*OOMError: the container was killed (exit 137, SIGKILL): usually out of memory*"]
    )


def test_timeout_kills_and_removes_the_container(
    pytester: pytest.Pytester,
    study: Path,
    container_ini: str,
    llem_containers: Callable[[], list[Any]],
) -> None:
    slow = script(pytester, "slow-python", "sleep 120")
    pytester.makeini(
        container_ini.replace(
            f"llem_docker_python = {sys.executable}", f"llem_docker_python = {slow}"
        )
        + "llem_docker_timeout = 3\n"
    )
    result = pytester.runpytest("--llem-results=out", RUNNER, "-k", "n2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*DockerTimeoutError: the item did not finish within 3s; its container was killed*"]
    )
    assert llem_containers() == []
    assert report(pytester)["items"][0]["outcome"] == "failed"


def test_missing_image_is_a_pull_error(pytester: pytest.Pytester, study: Path) -> None:
    result = pytester.runpytest(
        "--llem-results=out", "--llem-runner=docker:localhost/llem-no-such-image:1"
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        ["*?image? image 'localhost/llem-no-such-image:1' is not present and cannot be pulled*"]
    )


def test_token_never_leaks(
    pytester: pytest.Pytester,
    study: Path,
    monkeypatch: pytest.MonkeyPatch,
    docker_api: Any,
    llem_containers: Callable[[], list[Any]],
    container_ini: str,
) -> None:
    canary = "hf_CANARY_9f8e7d6c5b4a"
    monkeypatch.setenv("HF_TOKEN", canary)
    pytester.makeini(container_ini + "llem_persistent_auto_teardown = false\n")
    result = pytester.runpytest(
        "--llem-results=out",
        RUNNER,
        "--llem-container-strategy=persistent",
        "--junitxml=junit.xml",
        "-v",
    )
    result.assert_outcomes(passed=2)
    boxes = llem_containers()
    try:
        assert boxes, "the persistent container should still be there"
        inspect = json.dumps(docker_api.api.inspect_container(boxes[0].id))
        assert canary not in inspect
    finally:
        for box in boxes:
            box.remove(force=True)
    artefacts = [
        pytester.path / "out" / "report.json",
        pytester.path / "out" / "results.jsonl",
        pytester.path / "junit.xml",
    ]
    for path in artefacts:
        assert canary not in path.read_text(), path
    assert canary not in result.stdout.str() + result.stderr.str()


def test_gpu_device_requests_are_sent(
    docker_api: Any, tmp_path: Path, tiny_gpt2: Path, mounts: list[str]
) -> None:
    from pytest_llem.engines.builtin import BuiltinConfig
    from pytest_llem.runners.docker.container_options import DockerOptions
    from pytest_llem.runners.docker.ephemeral import EphemeralRunner
    from pytest_llem.runners.docker.errors import DockerError
    from pytest_llem.runners.run_spec import RunSpec

    opts = DockerOptions(python=sys.executable, volumes=tuple(mounts), timeout_s=120)
    runner = EphemeralRunner(TEST_IMAGE, "cli", opts)
    config = BuiltinConfig(model=str(tiny_gpt2), device="cuda", n=1, max_output_tokens=1)
    spec = RunSpec(
        nodeid="x",
        point_id="p",
        config_hash="0123456789abcdef",
        config=config,
        base_dir=str(tmp_path),
    )
    with pytest.raises(
        DockerError
    ):  # no GPU here: the run fails inside, after the request was sent
        runner.run(spec, lambda phase, detail: None)
    requests = runner.last_create["device_requests"]
    assert (
        len(requests) == 1
        and requests[0]["Capabilities"] == [["gpu"]]
        and requests[0]["Count"] == -1
    )
    assert runner.last_create["shm_size"] == "8g"


def test_multi_backend_study_runs_each_backend_in_docker(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText, container_ini: str
) -> None:
    text = fast_study(tiny_gpt2).replace("precision: fp32\n", "") + (
        "backend: [pytorch, vllm]\nexperiments:\n  - {backend: pytorch, precision: fp32}\n"
        "  - {backend: vllm, device: cuda, precision: fp16}\n"
    )
    pytester.makefile(".yaml", study_m=text)
    pytester.makeini(
        container_ini
        + f"llem_runner_pytorch = docker:{TEST_IMAGE}\nllem_runner_vllm = docker:{TEST_IMAGE}\n"
    )
    result = pytester.runpytest("--llem-results=out", "-rs")
    result.assert_outcomes(passed=1, skipped=1)  # vllm needs a GPU
    item = report(pytester)["items"][0]
    assert item["runner"]["type"] == "docker" and item["runner"]["source"] == "ini"


def test_multi_backend_without_docker_explains_the_ways_out(
    pytester: pytest.Pytester,
    tiny_gpt2: Path,
    fast_study: StudyText,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    text = fast_study(tiny_gpt2).replace("precision: fp32\n", "") + (
        "backend: [pytorch, vllm]\nexperiments:\n  - {backend: pytorch, precision: fp32}\n"
        "  - {backend: vllm, device: cuda, precision: fp16}\n"
    )
    pytester.makefile(".yaml", study_m=text)
    result = pytester.runpytest("--llem-results=out", "-rs")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*must run in separate containers*no Docker API is reachable*"])
    strict = pytester.runpytest("--llem-results=out", "--llem-require-gpu")
    strict.assert_outcomes(failed=2)
    strict.stdout.fnmatch_lines(["*split the study into one file per backend*"])


@pytest.mark.parametrize(
    ("strategy", "sig"), [("ephemeral", signal.SIGINT), ("persistent", signal.SIGTERM)]
)
def test_interrupt_removes_the_containers_and_keeps_finished_items(
    pytester: pytest.Pytester,
    container_ini: str,
    interrupt_study: Callable[..., Any],
    llem_containers: Callable[[], list[Any]],
    monkeypatch: pytest.MonkeyPatch,
    strategy: str,
    sig: signal.Signals,
) -> None:
    scratch = pytester.path / "scratch"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the session's exchange dirs go here
    returncode, stdout, finished = interrupt_study(
        sig, RUNNER, f"--llem-container-strategy={strategy}"
    )
    assert returncode == 2, stdout
    assert 1 <= len(finished) < 6
    assert all(i["outcome"] == "passed" and i["metrics"]["output_tokens"] > 0 for i in finished)
    assert report(pytester)["session"]["status"] == "interrupted"
    assert llem_containers() == []  # stopped and removed, not left running on the runner
    assert list(scratch.glob("llem-*")) == []  # nor the interrupted item's exchange dir


KILLER = """
import pytest
from pytest_llem.plugin import SETTINGS_KEY
from pytest_llem.runners.docker.client import client

KILL_AFTER = {kill_after!r}

@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    # A persistent container dying between items (OOM killer, driver reset, a human).
    if item.name in KILL_AFTER:
        session = item.config.stash[SETTINGS_KEY].session_id
        labels = ["io.pytest-llem.strategy=persistent", f"io.pytest-llem.session={{session}}"]
        for box in client().containers.list(filters={{"label": labels}}):
            box.kill()
"""


def test_persistent_restarts_a_dead_container_and_says_why(
    pytester: pytest.Pytester, study: Path, llem_containers: Callable[[], list[Any]]
) -> None:
    pytester.makeconftest(KILLER.format(kill_after=["pytorch-n2"]))
    result = pytester.runpytest(
        "--llem-results=out", RUNNER, "--llem-container-strategy=persistent"
    )
    result.assert_outcomes(passed=2)
    first, second = (i["runner"] for i in report(pytester)["items"])
    assert first["restart_reason"] is None
    assert second["restart_reason"] == "container is exited"
    assert first["container_id"] != second["container_id"]
    assert llem_containers() == []


def test_persistent_restarts_are_bounded(
    pytester: pytest.Pytester,
    tiny_gpt2: Path,
    fast_study: StudyText,
    container_ini: str,
    llem_containers: Callable[[], list[Any]],
) -> None:
    pytester.makeini(container_ini + "llem_persistent_max_restarts = 1\n")
    pytester.makefile(".yaml", study_r=fast_study(tiny_gpt2, "sweep:\n  n: [2, 3, 4]\n"))
    pytester.makeconftest(KILLER.format(kill_after=["pytorch-n2", "pytorch-n3"]))
    result = pytester.runpytest(
        "--llem-results=out", RUNNER, "--llem-container-strategy=persistent"
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*ContainerError: the persistent container failed its health check (container is "
            "exited) and llem_persistent_max_restarts = 1 restarts are used up*"
        ]
    )
    outcomes = [(i["point_id"], i["outcome"]) for i in report(pytester)["items"]]
    assert outcomes == [
        ("pytorch-n2", "passed"),
        ("pytorch-n3", "passed"),
        ("pytorch-n4", "failed"),
    ]
    assert llem_containers() == []


def test_persistent_health_check_reads_gpu_memory_in_the_container(
    docker_api: Any, tmp_path: Path, tiny_gpt2: Path, mounts: list[str]
) -> None:
    from pytest_llem.engines.builtin import BuiltinConfig
    from pytest_llem.runners.docker.container_options import DockerOptions
    from pytest_llem.runners.docker.errors import ContainerError
    from pytest_llem.runners.docker.persistent import PersistentRunner
    from pytest_llem.runners.run_spec import RunSpec

    # NVML cannot exist in a container here: the container's python answers the GPU-memory
    # probe from a file (what NVML would report), and runs everything else for real.
    used = tmp_path / "used_mb"
    python = tmp_path / "python"
    python.write_text(
        "#!/bin/sh\n"
        f'case "$2" in *nvmlDeviceGetMemoryInfo*) cat {used}; exit 0;; esac\n'
        f'exec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    opts = DockerOptions(python=str(python), volumes=(*mounts, str(tmp_path)), timeout_s=120)
    root = tmp_path / "exchange"
    root.mkdir()
    runner = PersistentRunner(TEST_IMAGE, "cli", opts, root)

    def spec(device: str) -> RunSpec:
        config = BuiltinConfig(model=str(tiny_gpt2), device=device, n=1, max_output_tokens=2)
        return RunSpec(
            nodeid="x", point_id="p", config_hash="0123456789abcdef", config=config,
            base_dir=str(tmp_path),
        )  # fmt: skip

    try:
        measured = runner.run(spec("cpu"), lambda phase, detail: None)
        assert measured.metrics.output_tokens > 0
        used.write_text("2048.0\n")
        # The warm worker holds the engine it just used: that memory is expected.
        assert runner.warm and runner.healthy(spec("cuda")) is None
        runner.warm = False  # as after a failed item or a restart: the worker holds nothing
        assert runner.healthy(spec("cuda")) == "2048 MB of GPU memory still in use"
        assert runner.healthy(spec("cpu")) is None  # cpu items do not probe GPUs
        used.write_text("512.0\n")
        assert runner.healthy(spec("cuda")) is None  # under the 1024 MB threshold
        used.write_text("-1\n")
        assert runner.healthy(spec("cuda")) is None  # no NVML in the container: nothing to hold
        used.write_text("Traceback: boom\n")
        assert runner.healthy(spec("cuda")) == "GPU memory probe failed (exit 0)"
        runner.box.kill()
        assert runner.healthy(spec("cpu")) == "container is exited"
        # Memory held by something else survives a restart: one restart, then a clear error.
        used.write_text("2048.0\n")
        with pytest.raises(ContainerError) as info:
            runner.run(spec("cuda"), lambda phase, detail: None)
        assert info.value.message == (
            "the persistent container is still unhealthy after a restart "
            "(2048 MB of GPU memory still in use)"
        )
        assert runner.restarts == 1 and runner.box.status == "running"
    finally:
        runner.close()
    assert runner.box is None
