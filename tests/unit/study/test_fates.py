"""The fate table covers every field of LLenergyMeasure's v2 schema, and its targets exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pytest_llem.engines.builtin import BUILTIN, BuiltinConfig
from pytest_llem.study.fates import by_old, table
from pytest_llem.study.grammar import check_path, split_key
from pytest_llem.study.sections import ExecutionConfig
from pytest_llem.study.structure import STUDY_KEYS

DATA = Path(__file__).parent / "data"
# The table of the built-in registry: the universal rows and the built-in backends' own.
FATES = table(BUILTIN)
BY_OLD = by_old(BUILTIN)


def original_fields() -> set[str]:
    lines = (DATA / "llem_v2_fields.txt").read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def test_the_table_covers_the_original_field_list_exactly() -> None:
    fields = original_fields()
    assert len(fields) == 132
    assert set(BY_OLD) - fields == set(), "rows for fields the original never had"
    assert fields - set(BY_OLD) == set(), "fields of the original without a fate"
    assert len(FATES) == len(BY_OLD), "one row per field"


def _exists(path: str) -> bool:
    head, *rest = path.split(".")
    if head in STUDY_KEYS:
        return not rest or (head == "execution" and rest[0] in ExecutionConfig.model_fields)
    return check_path(BuiltinConfig, tuple(split_key(path))) is None


def test_same_and_renamed_fields_exist_here() -> None:
    for fate in FATES:
        if fate.kind == "same":
            assert _exists(fate.old), fate.old
        elif fate.kind == "renamed":
            assert fate.new is not None and _exists(fate.new), fate
        else:
            assert fate.reason, f"{fate.old} is dropped without a reason"


def _paths(data: Any, prefix: tuple[str, ...] = ()) -> set[str]:
    out: set[str] = set()
    if not isinstance(data, dict):
        return out
    for key, value in data.items():
        path = (*prefix, *str(key).split("."))
        out.add(".".join(path))
        if key == "experiments" and not prefix:
            for entry in value:
                out |= _paths(entry)
        elif key == "sweep" and not prefix:
            out |= {k for k in value}
        else:
            out |= _paths(value, path)
    return out


def test_the_study_files_written_here_use_every_field_of_the_table() -> None:
    used: set[str] = set()
    for name in (
        "llem_every_field.yaml",
        "llem_every_field_base.yaml",
        "llem_every_field_refused.yaml",
    ):
        used |= _paths(yaml.safe_load((DATA / name).read_text(encoding="utf-8")))
    assert {fate.old for fate in FATES} - used == set()
