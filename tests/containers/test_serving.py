"""A serving item in containers: the backend's own server starts inside the container (on the
container's loopback), is kept warm across a persistent container's items, and goes with it;
its log comes back in the exchange directory on failure. The ``served`` backend's server is
the known-delay test server (tests/serving/backend.py), mounted with the project."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.serving.backend import CONFTEST, SERVED_BACKEND, study

pytestmark = pytest.mark.containers
TEST_IMAGE = "localhost/llem-test:latest"


@pytest.mark.parametrize("strategy", ["ephemeral", "persistent"])
def test_a_serving_item_runs_its_server_in_the_container(
    pytester: pytest.Pytester,
    backend_in_containers: Callable[..., None],
    llem_containers: Callable[[], list[Any]],
    strategy: str,
) -> None:
    backend_in_containers(
        "served_backend", SERVED_BACKEND, CONFTEST, study(extra="execution: {n_cycles: 2}\n")
    )
    result = pytester.runpytest(
        "--llem-results=out",
        f"--llem-runner=served=docker:{TEST_IMAGE}",
        f"--llem-container-strategy={strategy}",
    )
    result.assert_outcomes(passed=2)
    items = json.loads((pytester.path / "out" / "report.json").read_text())["items"]
    assert {i["runner"]["type"] for i in items} == {"docker"}
    for item in items:
        assert item["metrics"]["ttft_ms_p50"] > 0 and item["metrics"]["completed_requests"] == 8
        assert item["serving"]["server"]["ours"]
    # A persistent container's warm worker keeps the server up for the second item.
    reused = [i["serving"]["server"]["reused"] for i in items]
    assert reused == ([False, True] if strategy == "persistent" else [False, False])
    assert llem_containers() == []
