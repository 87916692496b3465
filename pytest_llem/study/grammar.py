"""Dotted paths, deep merge and schema-aware key checking for study files.

A dotted key is backend-scoped only when its first segment names a backend
(``vllm.engine.max_num_seqs``); otherwise it is a path into nested fields at any depth
(``decoder.temperature``).
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import Any

from pydantic import BaseModel

from pytest_llem.study.fates import Fate, table

Path_ = tuple[str, ...]


def split_key(key: str) -> Path_:
    """Split a dotted key into its segments (``a.b.c`` -> ``("a", "b", "c")``)."""
    return tuple(key.split("."))


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``over`` onto ``base``: nested mappings merge, anything else replaces.

    Neither input is modified; a nested block in ``over`` keeps ``base``'s siblings.
    """
    out: dict[str, Any] = dict(base)
    for key, value in over.items():
        current = out.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            out[key] = deep_merge(current, value)
        else:
            out[key] = value
    return out


def set_path(target: dict[str, Any], path: Path_, value: Any) -> None:
    """Set ``value`` at ``path`` inside ``target``, creating (copies of) blocks on the way."""
    node = target
    for seg in path[:-1]:
        child = node.get(seg)
        child = dict(child) if isinstance(child, Mapping) else {}
        node[seg] = child
        node = child
    node[path[-1]] = value


def expand_dotted(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Turn dotted keys into nested blocks, recursively: ``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        nested = expand_dotted(value) if isinstance(value, Mapping) else value
        path = split_key(key)
        if len(path) == 1:
            current = out.get(key)
            if isinstance(current, Mapping) and isinstance(nested, Mapping):
                nested = deep_merge(current, nested)
            out[key] = nested
        else:
            existing = out.get(path[0])
            block = dict(existing) if isinstance(existing, Mapping) else {}
            set_path(block, path[1:], nested)
            out[path[0]] = deep_merge(existing, block) if isinstance(existing, Mapping) else block
    return out


def flatten(mapping: Mapping[str, Any], prefix: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Yield (path, leaf value) pairs of a nested mapping, in insertion order."""
    for key, value in mapping.items():
        path = (*prefix, key)
        if isinstance(value, Mapping) and value:
            yield from flatten(value, path)
        else:
            yield path, value


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation like ``X | None``, if there is one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _section_model(arg)
            if found is not None:
                return found
    return None


def _is_open_mapping(annotation: Any) -> bool:
    """True for ``dict[...]``/``Any`` fields whose keys are free-form (passthrough blocks)."""
    if annotation is Any or annotation is dict:
        return True
    origin = typing.get_origin(annotation)
    if origin is dict:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_open_mapping(a) for a in typing.get_args(annotation))
    return False


def _is_open_model(model: type[BaseModel]) -> bool:
    """True for sections that pass undeclared keys through (``extra="allow"``)."""
    return model.model_config.get("extra") == "allow"


def moved_hint(name: str, fates: Iterable[Fate] | None = None) -> str | None:
    """Where an LLenergyMeasure key named ``name`` lives here, when one had that name
    (``fates``: the session's table, the universal rows by default)."""
    for fate in fates if fates is not None else table():
        if fate.old.rsplit(".", 1)[-1] == name and fate.kind != "same":
            where = f"is {fate.new} here" if fate.new else f"is dropped: {fate.reason}"
            return f"LLenergyMeasure's {fate.old} {where}; write it there"
    return None


def suggest(name: str, choices: list[str]) -> str | None:
    """The closest known name to ``name``, for "did you mean" hints."""
    matches = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return matches[0] if matches else None


def check_path(model: type[BaseModel], path: Path_) -> tuple[int, str, str] | None:
    """Check a key path against a model's fields.

    Returns:
        None when the path exists; otherwise (index of the bad segment, message, fix).
    """
    current: type[BaseModel] | None = model
    # An experiment model knows its registry, whose backends carry their sections' fates.
    fates = table(getattr(model, "backends", ()))
    for index, seg in enumerate(path):
        if current is None:
            parent = ".".join(path[:index])
            return index, f"{parent} is a value, not a block", f"give {parent} a value, not keys"
        fields = current.model_fields
        if seg not in fields and _is_open_model(current):
            return None  # keys beyond the declared ones are passed through (vLLM EngineArgs)
        if seg not in fields:
            hint = suggest(seg, sorted(fields))
            fix = f"did you mean {hint!r}?" if hint else f"use one of {sorted(fields)}"
            return index, f"unknown key {seg!r}", moved_hint(seg, fates) or fix
        annotation = fields[seg].annotation
        if _is_open_mapping(annotation):
            return None
        current = _section_model(annotation)
    return None


def unknown_keys(
    model: type[BaseModel], block: Mapping[str, Any], prefix: Path_ = ()
) -> Iterator[tuple[Path_, str, str]]:
    """Yield (path, message, fix) for every key of a nested block that ``model`` does not know."""
    for key, value in block.items():
        path = (*prefix, *split_key(key))
        problem = check_path(model, path)
        if problem is not None:
            index, message, fix = problem
            yield path[: index + 1], message, fix
        elif isinstance(value, Mapping) and not _ends_open(model, path):
            yield from unknown_keys(model, value, path)


def _ends_open(model: type[BaseModel], path: Path_) -> bool:
    """True when ``path`` ends inside a free-form block (its children are not checked)."""
    current: type[BaseModel] | None = model
    for seg in path:
        if current is None or seg not in current.model_fields:
            return True
        annotation = current.model_fields[seg].annotation
        if _is_open_mapping(annotation):
            return True
        current = _section_model(annotation)
    return current is None


def scoped_backend(key: str, backends: Collection[str]) -> tuple[str | None, Path_]:
    """Split a sweep key into (backend or None, path inside the config).

    A key is backend-scoped only when its first segment names a registered backend;
    otherwise it is a path into nested fields (``decoder.temperature``).
    """
    path = split_key(key)
    if len(path) > 1 and path[0] in backends:
        return path[0], path
    return None, path
