"""Item order per cycle_order, and cycle naming."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pytest_llem.study import load


def names(text: str, write: Callable[..., Path]) -> list[str]:
    return [i.name for i in load(write(text)).items()]


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
