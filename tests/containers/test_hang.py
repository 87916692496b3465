"""A hang inside the measured window of an item in a persistent container: the item's timeout
fires on the host, the container (and its worker) is killed, the next item runs on a fresh
worker and passes, and no container is left.

The hang is planted inside the container by a ``sitecustomize`` on the container's
``PYTHONPATH`` (``llem_docker_env``): the first window that starts while the marker file
exists consumes it and hangs, as an engine wedged mid-batch would.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.hangs import HANG_ONCE

pytestmark = pytest.mark.containers
StudyText = Callable[..., str]
TEST_IMAGE = "localhost/llem-test:latest"


def test_a_hung_worker_is_killed_and_the_next_item_runs_on_a_fresh_one(
    pytester: pytest.Pytester,
    tiny_gpt2: Path,
    fast_study: StudyText,
    container_ini: str,
    llem_containers: Callable[[], list[Any]],
) -> None:
    hooks = pytester.path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(HANG_ONCE)
    (hooks / "hang-once").write_text("2")  # the second item's window hangs
    # One workload for all three (the seed only renames them), in windows of several passes:
    # the item after the hang is judged against the one before it.
    study = fast_study(
        tiny_gpt2, "execution: {timeout_s: 45}\nsweep:\n  random_seed: [1, 2, 3]\n"
    ).replace("window: {min_duration_s: 0}", "window: {min_duration_s: 0.5}")
    pytester.makefile(".yaml", study_h=study)
    ini = container_ini.replace(
        "llem_docker_volumes =\n", f"llem_docker_volumes =\n    {hooks}:{hooks}:rw\n"
    )
    pytester.makeini(ini + f"llem_docker_env =\n    PYTHONPATH={hooks}\n")
    # The second item's window hangs; its own timeout (45 s) cuts it on the host.
    result = pytester.runpytest(
        "--llem-results=out",
        f"--llem-runner=docker:{TEST_IMAGE}",
        "--llem-container-strategy=persistent",
        "-p",
        "no:randomly",
    )
    items = json.loads((pytester.path / "out" / "report.json").read_text())["items"]
    assert [i["outcome"] for i in items] == ["passed", "failed", "passed"], result.stdout.str()
    before, hung, after = items
    assert hung["message"].startswith("timed out after 45 s in the measured window"), hung
    ids = [i["runner"]["container_id"] for i in (before, after)]
    assert all(ids) and ids[0] != ids[1]  # the hung container was replaced
    assert not before["model_cached"] and not after["model_cached"]  # a fresh worker loads
    ratio = after["metrics"]["output_tokens_per_s"] / before["metrics"]["output_tokens_per_s"]
    assert 1 / 3 < ratio < 3, ratio
    assert not (hooks / "hang-once").exists()
    assert llem_containers() == []  # the hung container was killed and the last torn down
