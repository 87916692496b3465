"""Stable identity: config hashes, study hashes and readable item ids."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

HASH_LEN = 16

# Short, readable id parts for common dimensions; anything else becomes `<key>-<value>`.
_ABBREVIATIONS: dict[str, str] = {
    "batch_size": "bs",
    "max_output_tokens": "out",
    "max_input_tokens": "in",
    "n": "n",
    "temperature": "t",
    "top_p": "p",
    "top_k": "k",
    "max_num_seqs": "seqs",
    "tensor_parallel_size": "tp",
    "num_beams": "beams",
    "beam_width": "beams",
    "random_seed": "seed",
    "input_len": "len",
}
# Fields whose value alone is a readable id part.
_BARE: frozenset[str] = frozenset({"backend", "precision", "device", "preset"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and no whitespace: equal data gives equal text everywhere."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def short_hash(data: Any) -> str:
    """First 16 hex characters of the sha256 of the canonical JSON of ``data``."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:HASH_LEN]


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict) and isinstance(value.get("source"), str):
        return _value_text(value["source"])  # a dataset block reads as its source
    if isinstance(value, (dict, list)):
        return short_hash(value)[:6]
    text = str(value)
    if "/" in text:  # model ids and paths: the last component reads best
        text = text.rstrip("/").rsplit("/", 1)[-1]
    return _UNSAFE.sub("_", text).strip("_") or "x"


def id_part(path: Sequence[str], value: Any) -> str:
    """A readable id fragment for one varying dimension (e.g. ``bs8``, ``bf16``)."""
    leaf = path[-1]
    if "passthrough_kwargs" in path[:-1]:
        # Free-form values (a URL, a key a careless study pasted in) never enter ids verbatim.
        return f"{_UNSAFE.sub('_', leaf)}-{short_hash(value)[:6]}"
    text = _value_text(value)
    if leaf in _BARE or leaf in ("model", "source", "dataset"):
        return text.lower() if leaf == "model" else text
    if leaf in _ABBREVIATIONS:
        return f"{_ABBREVIATIONS[leaf]}{text}"
    return f"{_UNSAFE.sub('_', leaf)}-{text}"


def unique_ids(base_ids: Sequence[str], hashes: Sequence[str]) -> list[str]:
    """Make ids unique: colliding ids get ``-<hash6>``, so ids never depend on point order."""
    counts: dict[str, int] = {}
    for base in base_ids:
        counts[base] = counts.get(base, 0) + 1
    return [
        base if counts[base] == 1 else f"{base}-{digest[:6]}"
        for base, digest in zip(base_ids, hashes, strict=True)
    ]
