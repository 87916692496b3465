"""A/B arms in containers: the same image twice, each arm with its own environment, each in its
own persistent container (one engine load per arm), judged on paired cycles."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.containers
StudyText = Callable[..., str]
TEST_IMAGE = "localhost/llem-test:latest"


def test_two_arms_of_one_image_run_in_their_own_containers_with_their_own_env(
    pytester: pytest.Pytester,
    tiny_gpt2: Path,
    fast_study: StudyText,
    container_ini: str,
    llem_containers: Callable[[], list[Any]],
) -> None:
    arms = (
        "ab:\n"
        f"  reference: {{runner: 'docker:{TEST_IMAGE}', env: {{LLEM_ARM: ref}}}}\n"
        f"  candidate: {{runner: 'docker:{TEST_IMAGE}', env: {{LLEM_ARM: cand}}}}\n"
        "gate: {max_regression: {output_tokens_per_s: 95%}}\n"
    )
    pytester.makefile(".yaml", study_abc=fast_study(tiny_gpt2, "execution: {n_cycles: 3}\n") + arms)
    pytester.makeini(container_ini + "llem_persistent_auto_teardown = false\n")
    result = pytester.runpytest("--llem-results=out", "--llem-container-strategy=persistent")
    left = llem_containers()
    try:
        items = json.loads((pytester.path / "out" / "report.json").read_text())["items"]
        assert len(items) == 6, result.stdout.str()
        by_arm: dict[str, set[str]] = {}
        for item in items:
            assert item["runner"]["type"] == "docker", item
            by_arm.setdefault(item["arm"], set()).add(item["runner"]["container_id"])
        assert len(by_arm["reference"]) == 1 and len(by_arm["candidate"]) == 1
        assert by_arm["reference"] != by_arm["candidate"]
        envs = {
            next(e for e in box.attrs["Config"]["Env"] if e.startswith("LLEM_ARM=")) for box in left
        }
        assert envs == {"LLEM_ARM=ref", "LLEM_ARM=cand"}
        cached = [i["model_cached"] for i in items if i["arm"] == "candidate"]
        assert cached == [False, True, True]  # each arm's worker keeps its engine
        last = [i for i in items if i["cycle"] == 3][-1]
        assert last["gate"]["comparisons"][0]["kind"] == "paired"
    finally:
        for box in left:
            box.remove(force=True)
