"""Prompt sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llem.engines.datasets import (
    DatasetError,
    ordered,
    read_jsonl_prompts,
    read_jsonl_records,
    resolve_source,
    synthetic_ids,
    take,
)
from pytest_llem.study.experiment import DatasetConfig


def test_builtin_prompts_ship_with_the_package() -> None:
    path = resolve_source(DatasetConfig(source="prompts-en"), None)
    assert path is not None and len(read_jsonl_prompts(path, None)) == 40


def test_column_detection_and_chat_messages(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text(
        '{"id": 1, "instruction": "a"}\n\n{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "b"}]}\n"c"\n'
    )
    assert read_jsonl_prompts(f, None) == ["a", "b", "c"]


def test_bad_lines_name_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "a"}\n{oops\n')
    with pytest.raises(DatasetError, match=r"p.jsonl:2: not valid JSON"):
        read_jsonl_prompts(f, None)
    f.write_text('{"prompt": "a"}\n{"body": "b"}\n')
    with pytest.raises(DatasetError, match=r"p.jsonl:2: no prompt field") as err:
        read_jsonl_prompts(f, None)
    assert err.value.fix and "dataset.column" in err.value.fix
    with pytest.raises(DatasetError, match="no prompt field"):
        read_jsonl_prompts(f, "prompt")


def test_relative_paths_resolve_against_the_study_dir(tmp_path: Path) -> None:
    (tmp_path / "d.jsonl").write_text('{"prompt": "a"}\n')
    assert resolve_source(DatasetConfig(source="d.jsonl"), tmp_path) == tmp_path / "d.jsonl"
    with pytest.raises(DatasetError, match="neither"):
        resolve_source(DatasetConfig(source="d.csv"), tmp_path)


def test_take_cycles_and_synthetic_is_seeded() -> None:
    assert take(["a", "b"], 5) == ["a", "b", "a", "b", "a"]
    a = synthetic_ids(50, [0, 1], 3, 4, seed=1)
    assert a == synthetic_ids(50, [0, 1], 3, 4, seed=1)
    assert a != synthetic_ids(50, [0, 1], 3, 4, seed=2)
    assert all(len(p) == 4 and 0 not in p and 1 not in p for p in a)


def test_dataset_order_follows_the_original(tmp_path: Path) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text(
        '{"_provenance": "x"}\n'
        + "".join(
            f'{{"prompt": "{p}", "source": "{s}"}}\n'
            for p, s in [("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b")]
        )
    )
    records = read_jsonl_records(f, None)
    assert ordered(records, None, 1) == ["a1", "b1", "a2", "b2"]
    assert ordered(records, "grouped", 1) == ["a1", "a2", "b1", "b2"]
    shuffled = ordered(records, "shuffled", 1)
    assert sorted(shuffled) == ["a1", "a2", "b1", "b2"] and shuffled == ordered(
        records, "shuffled", 1
    )


def test_the_aienergyscore_set_is_built_in() -> None:
    path = resolve_source(DatasetConfig(source="aienergyscore"), None)
    assert path is not None and len(read_jsonl_prompts(path, None)) == 1000
