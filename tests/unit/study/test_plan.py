"""Item order per cycle_order, and cycle naming."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.study.plan import count_loads
from pytest_llem.testing import load_study


def names(text: str, write: Callable[..., Path]) -> list[str]:
    return [i.name for i in load_study(write(text)).items()]


GRID = "model: m\nsweep:\n  precision: [fp16, bf16]\n"


def test_sequential_runs_all_cycles_of_a_point_together(write_study: Callable[..., Path]) -> None:
    got = names(GRID + "execution: {n_cycles: 2, cycle_order: sequential}\n", write_study)
    assert got == ["pytorch-fp16-c1", "pytorch-fp16-c2", "pytorch-bf16-c1", "pytorch-bf16-c2"]


def test_interleaved_runs_each_cycle_through_all_points(write_study: Callable[..., Path]) -> None:
    got = names(GRID + "execution: {n_cycles: 2, cycle_order: interleaved}\n", write_study)
    assert got == ["pytorch-fp16-c1", "pytorch-bf16-c1", "pytorch-fp16-c2", "pytorch-bf16-c2"]


def test_shuffled_is_seeded_and_repeatable(write_study: Callable[..., Path]) -> None:
    text = "model: m\nsweep:\n  n: [1, 2, 3, 4, 5, 6]\nexecution: {n_cycles: 3, cycle_order: shuffled}\n"
    first = names(text, write_study)
    assert first == names(text, write_study)
    assert sorted(first) == sorted(names(text.replace("shuffled", "sequential"), write_study))
    cycles = [[n for n in first if n.endswith(f"-c{c}")] for c in (1, 2, 3)]
    assert (
        len({tuple(x.rsplit("-", 1)[0] for x in c) for c in cycles}) > 1
    )  # orders differ per cycle
    seeded = names(text.replace("shuffled}", "shuffled, shuffle_seed: 7}"), write_study)
    assert seeded != first


def test_single_cycle_has_no_suffix_and_invalid_points_come_last(
    write_study: Callable[..., Path],
) -> None:
    got = names(
        "model: m\nbackend: [vllm, pytorch]\nsweep:\n  precision: [fp32, fp16]\n", write_study
    )
    assert got == ["vllm-fp16", "pytorch-fp32", "pytorch-fp16", "vllm-fp32"]


def by_precision(config: BuiltinConfig) -> str:
    return config.precision


LOADS = "model: m\nsweep:\n  n: [1, 2]\n  precision: [fp16, bf16]\n"


def test_interleaved_groups_load_keys_and_alternates_rounds(
    write_study: Callable[..., Path],
) -> None:
    plan = load_study(write_study(LOADS + "execution: {n_cycles: 3, cycle_order: interleaved}\n"))
    assert [i.name for i in plan.items()][:4] == [  # without load keys: as written
        "pytorch-n1-fp16-c1",
        "pytorch-n1-bf16-c1",
        "pytorch-n2-fp16-c1",
        "pytorch-n2-bf16-c1",
    ]
    items = plan.items(by_precision)
    rounds = [[i.name.rsplit("-", 1)[0] for i in items if i.cycle == c] for c in (1, 2, 3)]
    forward = ["pytorch-n1-fp16", "pytorch-n2-fp16", "pytorch-n1-bf16", "pytorch-n2-bf16"]
    assert rounds == [forward, forward[::-1], forward]  # every round still runs every point
    assert count_loads(items, by_precision) == (4, 2)  # K + C - 1, not K x C = 6
    assert count_loads(plan.items(), by_precision) == (12, 2)
    assert plan.items(by_precision) == items  # deterministic (xdist collects on every worker)


def test_sequential_groups_load_keys(write_study: Callable[..., Path]) -> None:
    plan = load_study(write_study(LOADS + "execution: {n_cycles: 2, cycle_order: sequential}\n"))
    items = plan.items(by_precision)
    assert [i.name for i in items][:4] == [
        "pytorch-n1-fp16-c1",
        "pytorch-n1-fp16-c2",
        "pytorch-n2-fp16-c1",
        "pytorch-n2-fp16-c2",
    ]
    assert count_loads(items, by_precision) == (2, 2)


def test_shuffled_stays_shuffled_and_says_what_it_costs(
    write_study: Callable[..., Path],
) -> None:
    plan = load_study(write_study(LOADS + "execution: {n_cycles: 3, cycle_order: shuffled}\n"))
    assert plan.items(by_precision) == plan.items()
    loads = count_loads(plan.items(by_precision), by_precision)
    line = replace(plan, planned_loads=loads).loads_line()
    assert line == (
        f"  {loads[0]} model loads planned for 2 load configurations (shuffled order, kept to "
        "break order effects; interleaved would load 4 times)"
    )
    one_key = replace(plan, planned_loads=(1, 1))
    assert one_key.loads_line() is None  # nothing to say with one load configuration
