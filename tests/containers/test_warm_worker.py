"""The warm worker of persistent containers, for real (podman's Docker API in CI): the engine
stays loaded while the load key is the same, and a dead or hung worker costs one item at most."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.containers
StudyText = Callable[..., str]
TEST_IMAGE = "localhost/llem-test:latest"
PERSISTENT = (
    "--llem-results=out",
    f"--llem-runner=docker:{TEST_IMAGE}",
    "--llem-container-strategy=persistent",
)


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    return json.loads((pytester.path / "out" / "report.json").read_text())  # type: ignore[no-any-return]


def test_one_load_key_loads_once(
    pytester: pytest.Pytester,
    tiny_gpt2: Path,
    fast_study: StudyText,
    container_ini: str,
    llem_containers: Callable[[], list[Any]],
) -> None:
    pytester.makefile(".yaml", study_w=fast_study(tiny_gpt2, "sweep:\n  n: [1, 2, 3, 4]\n"))
    result = pytester.runpytest(*PERSISTENT)
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["model loads: 1 (* s loading)"])
    data = report(pytester)
    items = data["items"]
    assert [i["model_cached"] for i in items] == [False, True, True, True]
    assert len({i["runner"]["container_id"] for i in items}) == 1
    assert data["session"]["model_loads"] == 1
    assert data["session"]["model_load_s"] == pytest.approx(items[0]["model_load_s"], abs=0.01)
    assert llem_containers() == []


def test_two_load_keys_load_twice(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText, container_ini: str
) -> None:
    # Written so that the keys alternate; the reload-aware order groups them.
    text = fast_study(tiny_gpt2, "sweep:\n  n: [2, 3]\n  precision: [fp32, bf16]\n")
    pytester.makefile(".yaml", study_k=text.replace("precision: fp32\n", ""))
    result = pytester.runpytest(*PERSISTENT)
    result.assert_outcomes(passed=4)
    items = report(pytester)["items"]
    assert [(i["config"]["precision"], i["model_cached"]) for i in items] == [
        ("fp32", False),
        ("fp32", True),
        ("bf16", False),
        ("bf16", True),
    ]
    assert report(pytester)["session"]["model_loads"] == 2


WORKER_KILLER = """
import os, signal
import pytest
from pytest_llem.plugin import SETTINGS_KEY
from pytest_llem.runners.docker.client import client

@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item):
    # The worker process itself dies between items (the OOM killer, a segfault in a library):
    # SIGKILL from the host to the container's main process, not a container API call.
    if item.name == "pytorch-n1":
        session = item.config.stash[SETTINGS_KEY].session_id
        labels = ["io.pytest-llem.strategy=persistent", f"io.pytest-llem.session={session}"]
        for box in client().containers.list(filters={"label": labels}):
            os.kill(box.attrs["State"]["Pid"], signal.SIGKILL)
"""


def test_a_killed_worker_is_restarted_and_the_next_item_passes(
    pytester: pytest.Pytester,
    tiny_gpt2: Path,
    fast_study: StudyText,
    container_ini: str,
    llem_containers: Callable[[], list[Any]],
) -> None:
    pytester.makefile(".yaml", study_d=fast_study(tiny_gpt2, "sweep:\n  n: [1, 2, 3]\n"))
    pytester.makeconftest(WORKER_KILLER)
    result = pytester.runpytest(*PERSISTENT)
    result.assert_outcomes(passed=3)
    items = report(pytester)["items"]
    runners = [i["runner"] for i in items]
    assert runners[0]["restart_reason"] is None
    assert runners[1]["restart_reason"] in ("container is exited", "container is stopped")
    assert runners[0]["container_id"] != runners[1]["container_id"] == runners[2]["container_id"]
    assert [i["model_cached"] for i in items] == [False, False, True]  # a new worker loads
    assert llem_containers() == []


def test_a_hung_worker_fails_its_item_at_the_timeout(
    pytester: pytest.Pytester,
    tiny_gpt2: Path,
    fast_study: StudyText,
    container_ini: str,
    llem_containers: Callable[[], list[Any]],
) -> None:
    # A worker that never answers: the container's python sleeps instead of serving.
    slow = pytester.path / "hung-python"
    slow.write_text("#!/bin/sh\nsleep 120\n")
    slow.chmod(slow.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    pytester.makeini(
        container_ini.replace(
            f"llem_docker_python = {sys.executable}", f"llem_docker_python = {slow}"
        )
        + "llem_docker_timeout = 3\n"
    )
    pytester.makefile(".yaml", study_h=fast_study(tiny_gpt2))
    result = pytester.runpytest(*PERSISTENT)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*DockerTimeoutError: the item did not finish within 3s; the persistent container was killed*"
        ]
    )
    assert llem_containers() == []


def test_without_the_worker_each_item_is_a_new_process(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText, container_ini: str
) -> None:
    pytester.makeini(container_ini + "llem_persistent_worker = false\n")
    pytester.makefile(".yaml", study_x=fast_study(tiny_gpt2, "sweep:\n  n: [1, 2]\n"))
    result = pytester.runpytest(*PERSISTENT)
    result.assert_outcomes(passed=2)
    items = report(pytester)["items"]
    assert [i["model_cached"] for i in items] == [False, False]
    assert items[0]["runner"]["container_id"] == items[1]["runner"]["container_id"]
    assert report(pytester)["session"]["model_loads"] == 2
