"""Dotted-path and merge helpers."""

from __future__ import annotations

from pytest_llem.engines.builtin import BUILTIN, BuiltinConfig
from pytest_llem.study.grammar import check_path, deep_merge, expand_dotted, scoped_backend


def test_deep_merge_keeps_siblings_and_does_not_mutate() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": 1}
    over = {"a": {"b": 9}}
    assert deep_merge(base, over) == {"a": {"b": 9, "c": 2}, "d": 1}
    assert base == {"a": {"b": 1, "c": 2}, "d": 1}


def test_expand_dotted_merges_with_nested_blocks() -> None:
    assert expand_dotted({"a.b": 1, "a": {"c": 2}, "x.y.z": 3}) == {
        "a": {"b": 1, "c": 2},
        "x": {"y": {"z": 3}},
    }


def test_check_path_walks_nested_models_and_stops_at_free_form_blocks() -> None:
    assert check_path(BuiltinConfig, ("vllm", "engine", "attention", "backend")) is None
    assert check_path(BuiltinConfig, ("passthrough_kwargs", "anything", "goes")) is None
    assert check_path(BuiltinConfig, ("vllm", "engine", "compilation_config", "level")) is None
    bad = check_path(BuiltinConfig, ("vllm", "engin", "x"))
    assert bad == (1, "unknown key 'engin'", "did you mean 'engine'?")
    scalar = check_path(BuiltinConfig, ("precision", "x"))
    assert scalar == (1, "precision is a value, not a block", "give precision a value, not keys")
    far = check_path(BuiltinConfig, ("decoder", "zzzzzz"))
    assert far is not None and far[2].startswith("use one of [") and "'temperature'" in far[2]


def test_scoped_backend() -> None:
    names = BUILTIN.names
    assert scoped_backend("vllm.engine.max_num_seqs", names) == (
        "vllm",
        ("vllm", "engine", "max_num_seqs"),
    )
    assert scoped_backend("decoder.temperature", names) == (None, ("decoder", "temperature"))
    assert scoped_backend("precision", names) == (None, ("precision",))
    # Scoping follows the registry: a plugin's backend scopes its keys too.
    assert scoped_backend("sglang.mem_fraction", ("sglang",)) == (
        "sglang",
        ("sglang", "mem_fraction"),
    )
    assert scoped_backend("sglang.mem_fraction", names) == (None, ("sglang", "mem_fraction"))
