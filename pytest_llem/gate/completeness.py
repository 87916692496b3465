"""Which cycles of each config produced a sample, and why the others did not (pure).

The gate decides a config on all of its cycles: a verdict on part of them could pass a
regression that the missing cycles would have shown (or that a rerun re-drew). A cycle is
missing because it was not selected in this session (``-k``, ``-m``, ``--lf``: known at
collection), or because its item ended without a sample (failed, skipped by pre-flight, timed
out, crashed with its xdist worker, or the session was interrupted). A config with a missing
cycle is never a pass: its verdict is inconclusive, and the reasons say which cycles and why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

NOT_SELECTED = "not selected in this session (-k, -m, --lf or a shard left it out)"
NOT_RUN = "did not run"


def describe(missing: Mapping[int, str]) -> str:
    """``c3 not selected in this session (...); c1 failed: ...`` in cycle order."""
    return "; ".join(f"c{cycle} {missing[cycle]}" for cycle in sorted(missing))


@dataclass
class Ledger:
    """Per config: how many cycles it has, which this session selected, which produced a
    sample, and why the others ended without one."""

    planned: dict[str, int] = field(default_factory=dict)
    selected: dict[str, set[int]] = field(default_factory=dict)
    sampled: dict[str, set[int]] = field(default_factory=dict)
    lost: dict[str, dict[int, str]] = field(default_factory=dict)

    def expect(self, config_hash: str, n_cycles: int, cycles: Iterable[int]) -> None:
        """What collection selected of a config (call once per config, with every selected
        cycle)."""
        self.planned[config_hash] = n_cycles
        self.selected[config_hash] = set(cycles)

    def sample(self, config_hash: str, cycle: int) -> None:
        """A cycle produced a sample (a later loss of the same cycle, a rerun, changes
        nothing: the sample stands)."""
        self.sampled.setdefault(config_hash, set()).add(cycle)
        self.lost.get(config_hash, {}).pop(cycle, None)

    def lose(self, config_hash: str, cycle: int, reason: str) -> None:
        """A cycle's attempt ended without a sample, for ``reason``."""
        if cycle not in self.sampled.get(config_hash, set()):
            self.lost.setdefault(config_hash, {})[cycle] = reason

    def known(self, config_hash: str) -> bool:
        """True when collection told the ledger about this config."""
        return config_hash in self.planned

    def unselected(self, config_hash: str) -> dict[int, str]:
        """Cycles that cannot produce a sample in this session: they were not selected."""
        if not self.known(config_hash):
            return {}
        chosen = self.selected[config_hash]
        return {c: NOT_SELECTED for c in range(1, self.planned[config_hash] + 1) if c not in chosen}

    def settled(self, config_hash: str, current: int) -> bool:
        """True when every selected cycle but ``current`` has ended (with a sample or not):
        the current item is the last of its config in this session."""
        done = self.sampled.get(config_hash, set()) | set(self.lost.get(config_hash, {}))
        return self.selected.get(config_hash, set()) - {current} <= done

    def missing(self, config_hash: str) -> dict[int, str]:
        """Every cycle without a sample, with its reason."""
        sampled = self.sampled.get(config_hash, set())
        lost = self.lost.get(config_hash, {})
        out = self.unselected(config_hash)
        for cycle in range(1, self.planned.get(config_hash, 0) + 1):
            if cycle not in sampled and cycle not in out:
                out[cycle] = lost.get(cycle, NOT_RUN)
        return out


@dataclass(frozen=True)
class CycleRecord:
    """What a report says of one attempt at a cycle (the controller's and merge's view)."""

    cycle: int
    outcome: str
    has_sample: bool
    message: str | None = None


def missing_from_records(
    n_cycles: int, records: Iterable[CycleRecord], interrupted: bool = False
) -> dict[int, str]:
    """The cycles of a config without a sample, with reasons, from its items' records."""
    by_cycle: dict[int, list[CycleRecord]] = {}
    for record in records:
        by_cycle.setdefault(record.cycle, []).append(record)
    out: dict[int, str] = {}
    for cycle in range(1, n_cycles + 1):
        attempts = by_cycle.get(cycle, [])
        if any(a.has_sample for a in attempts):
            continue
        if not attempts:
            out[cycle] = "did not run: the session was interrupted" if interrupted else NOT_SELECTED
            continue
        last = attempts[-1]
        out[cycle] = outcome_reason(last.outcome, last.message)
    return out


def outcome_reason(outcome: str, message: str | None) -> str:
    """``failed: <first line>``, ``skipped: <reason>``, ``timed out``: why a cycle has no
    sample, in a few words."""
    first = next((ln.strip() for ln in (message or "").splitlines() if ln.strip()), "")
    if "Timeout" in (message or "") or "timed out" in first:
        return "timed out"
    if "worker" in first and "crash" in first:
        return "crashed with its xdist worker"
    text = f"{outcome}: {first}" if first else outcome
    return text if len(text) <= 100 else text[:97] + "..."
