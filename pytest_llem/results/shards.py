"""Deterministic, balanced sharding of items across machines (cycles of a config together)."""

from __future__ import annotations

from collections.abc import Sequence


def assign(group_keys: Sequence[str], shards: int) -> list[int]:
    """Shard index (0-based) for each item, given each item's group key.

    Groups (all cycles of one config) go whole to the shard with the fewest items so far,
    biggest groups first, ties broken by key and shard index: the same items always give the
    same assignment, on every machine, whatever their order.
    """
    sizes: dict[str, int] = {}
    for key in group_keys:
        sizes[key] = sizes.get(key, 0) + 1
    load = [0] * shards
    where: dict[str, int] = {}
    for key in sorted(sizes, key=lambda k: (-sizes[k], k)):
        target = min(range(shards), key=lambda i: (load[i], i))
        where[key] = target
        load[target] += sizes[key]
    return [where[key] for key in group_keys]
