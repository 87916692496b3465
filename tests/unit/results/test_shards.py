"""Shard assignment: deterministic, balanced, cycles of a config together."""

from __future__ import annotations

import random

from pytest_llem.results.shards import assign


def test_groups_stay_together_and_shards_balance() -> None:
    keys = [f"cfg{i % 7}" for i in range(7 * 3)]  # 7 configs x 3 cycles
    shards = assign(keys, 3)
    for key in set(keys):
        assert len({s for k, s in zip(keys, shards, strict=True) if k == key}) == 1
    sizes = [shards.count(s) for s in range(3)]
    assert max(sizes) - min(sizes) <= 3 and sum(sizes) == 21


def test_order_independent() -> None:
    keys = [f"cfg{i % 5}" for i in range(15)]
    shuffled = list(keys)
    random.Random(1).shuffle(shuffled)
    first = dict(zip(keys, assign(keys, 2), strict=True))
    second = dict(zip(shuffled, assign(shuffled, 2), strict=True))
    assert first == second


def test_xdist_scope_keeps_cycles_together() -> None:
    from pytest_llem.harness.xdist import cycle_group

    patterns = ("study_*.yaml",)
    assert cycle_group("b/study_x.yaml::pytorch-bs1-c2", patterns) == "b/study_x.yaml::pytorch-bs1"
    assert cycle_group("b/study_x.yaml::pytorch-bs1", patterns) == "b/study_x.yaml::pytorch-bs1"
    assert cycle_group("tests/test_a.py::test_x-c2", patterns) == "tests/test_a.py::test_x-c2"
