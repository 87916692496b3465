"""A backend from another package runs in a container like a built-in one: the RunSpec carries
its spec's import paths, and the container imports its module (here from the study's mounted
directory on ``PYTHONPATH``, set through ``llem_docker_env``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.echo import CONFTEST, ECHO_BACKEND, STUDY

pytestmark = pytest.mark.containers
TEST_IMAGE = "localhost/llem-test:latest"


@pytest.mark.parametrize("strategy", ["ephemeral", "persistent"])
def test_the_echo_backend_runs_in_containers(
    pytester: pytest.Pytester,
    backend_in_containers: Callable[..., None],
    llem_containers: Callable[[], list[Any]],
    strategy: str,
) -> None:
    backend_in_containers("echo_backend", ECHO_BACKEND, CONFTEST, STUDY)
    result = pytester.runpytest(
        "--llem-results=out",
        f"--llem-runner=echo=docker:{TEST_IMAGE}",
        f"--llem-container-strategy={strategy}",
    )
    result.assert_outcomes(passed=4)
    items = json.loads((pytester.path / "out" / "report.json").read_text())["items"]
    assert {i["runner"]["type"] for i in items} == {"docker"}
    assert {i["runner"]["strategy"] for i in items} == {strategy}
    assert all(
        i["config"]["backend"] == "echo" and i["environment"]["echo"] == "1.0" for i in items
    )
    tokens = {i["point_id"]: i["metrics"]["output_tokens"] for i in items}
    assert tokens == {"echo-repeat-1": 4 + 5 + 6 + 7, "echo-repeat-3": 8 * 4}
    assert llem_containers() == []
