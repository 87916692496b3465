"""YAML reading: line numbers, safety against tags, duplicate keys and alias bombs."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from pytest_llem.errors import StudyError
from pytest_llem.study.loader import parse_text, read


def test_lines_are_recorded_for_nested_keys_and_list_items() -> None:
    doc = parse_text("a: 1\nb:\n  c: 2\nd:\n  - x\n  - y\n", Path("s.yaml"))
    assert doc.lines[("a",)] == 1
    assert doc.lines[("b", "c")] == 3
    assert doc.lines[("d", 1)] == 6
    assert doc.line_of(("b", "c", "missing")) == 3


def test_duplicate_keys_are_errors() -> None:
    with pytest.raises(StudyError, match="duplicate key") as err:
        parse_text("model: a\nn: 1\nmodel: b\n", Path("s.yaml"))
    assert err.value.problems[0].line == 3


def test_python_tags_are_refused() -> None:
    with pytest.raises(StudyError, match=r"cannot read this value|unsupported YAML tag"):
        parse_text("model: !!python/object/apply:os.system ['echo hi']\n", Path("s.yaml"))


def test_alias_bomb_fails_fast() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        bomb += f"{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
    # Refused before expansion: memory, not wall time, tells (a loaded machine is slow anyway).
    tracemalloc.start()
    try:
        with pytest.raises(StudyError, match="alias bomb"):
            parse_text(bomb, Path("s.yaml"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 300_000_000, peak  # 10**10 expanded nodes would need far more


def test_syntax_errors_name_the_line_and_tabs_get_a_hint() -> None:
    with pytest.raises(StudyError) as err:
        parse_text("model: m\nsweep:\n\tprecision: [fp16]\n", Path("s.yaml"))
    assert err.value.problems[0].line == 3
    assert "tabs" in str(err.value)


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(StudyError, match="cannot read"):
        read(tmp_path / "missing.yaml")
    bad = tmp_path / "latin.yaml"
    bad.write_bytes(b"model: caf\xe9\n")
    with pytest.raises(StudyError, match="UTF-8"):
        read(bad)


def test_merge_keys_resolve() -> None:
    doc = parse_text("base: &b {n: 1, model: m}\nother:\n  <<: *b\n  n: 2\n", Path("s.yaml"))
    assert doc.data["other"] == {"n": 2, "model": "m"}
