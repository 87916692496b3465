"""Unstable configs: cycles that vary more than a threshold (CV) are flagged when recorded.

A baseline is only as trustworthy as its cycles are steady: a reference saved while other work
ran on the machine makes every later comparison inconclusive (or, with the old two-verdict
gate, silently "pass"). So the config's last cycle gets an ``unstable_cycles`` validity warning,
and ``--llem-save-baseline`` refuses to store unstable configs unless forced.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_llem.gate.baseline_file import BaselineEntry
from pytest_llem.gate.thresholds import Limit
from pytest_llem.results.records import ValidityWarning
from pytest_llem.study.measurement import DISTURBANCE_CODES
from pytest_llem.study.sections import GateConfig, parse_limit

DEFAULT_MAX_CV = 0.05
CODE = "unstable_cycles"


@dataclass(frozen=True)
class Rule:
    """How much a config's cycles may vary (CV, a fraction), and on which metrics."""

    max_cv: float
    metrics: tuple[str, ...]


def max_cv_of(study: GateConfig, ini: float | None) -> float:
    """ini ``llem_max_cv`` beats the study's ``gate.max_cv`` beats 5%."""
    if ini is not None:
        return ini
    if study.max_cv is not None:
        return parse_limit(study.max_cv)[0]
    return DEFAULT_MAX_CV


def rule(study: GateConfig, ini_max_cv: float | None, relative: Sequence[Limit]) -> Rule:
    """The stability rule of a study: its gated relative metrics (the defaults when none)."""
    metrics = tuple(sorted({lim.metric for lim in relative if lim.kind == "relative"}))
    return Rule(max_cv_of(study, ini_max_cv), metrics)


def unstable(stats: Mapping[str, Mapping[str, float]], checked: Rule) -> dict[str, float]:
    """Metrics whose cycle-to-cycle CV exceeds the rule (needs 2+ cycles), with their CV."""
    out: dict[str, float] = {}
    for metric in checked.metrics:
        entry = stats.get(metric)
        if entry is None or entry.get("n", 0.0) < 2:
            continue
        value = abs(entry.get("cv", 0.0))
        if value > checked.max_cv:
            out[metric] = value
    return out


def describe(found: Mapping[str, float]) -> str:
    """``output_tokens_per_s CV 60.1%, energy_j CV 7.0%``."""
    return ", ".join(f"{m} CV {v * 100:.1f}%" for m, v in sorted(found.items()))


def warning(found: Mapping[str, float], checked: Rule) -> ValidityWarning:
    """The validity warning given at a config's last cycle."""
    return ValidityWarning(
        code=CODE,
        message=f"cycles vary beyond {checked.max_cv * 100:g}%: {describe(found)}; a gate "
        "against (or saved from) these figures cannot be trusted: re-run on a quiet machine",
    )


def refusals(entries: Iterable[BaselineEntry], rules: Mapping[str, Rule]) -> list[str]:
    """One line per baseline entry too unstable to save (rules keyed by config hash)."""
    lines = []
    for entry in entries:
        checked = rules.get(entry.config_hash)
        if checked is None:
            continue
        found = {m: v for m, v in entry.cv.items() if m in checked.metrics and v > checked.max_cv}
        if found:
            lines.append(
                f"{entry.study}::{entry.point_id}: {describe(found)} (> {checked.max_cv * 100:g}%)"
            )
    return lines


def refusal_note(name: str, refused: Sequence[str], force_flag: str) -> str:
    """Why baseline ``name`` was not saved, and the two ways out."""
    return (
        f"baseline {name!r} NOT saved: these configs' cycles vary too much to serve as a "
        "reference:\n  " + "\n  ".join(refused) + "\n  re-run on a quiet machine (or with "
        f"more cycles), or store it anyway with {force_flag}"
    )


# Disturbed cycles (energy/disturbance.py): under ``validity.on_disturbed: warn`` a window
# measured on a disturbed machine is kept with its flags; a verdict that used it says so, and
# a baseline is not saved from it unless forced.


def disturbance_flags(
    warnings: Iterable[ValidityWarning], disturbed_by: Iterable[str]
) -> list[str]:
    """Labels of the warnings that make a window disturbed (``host_contention 61% of 2
    cores``)."""
    codes = set(disturbed_by)
    return [w.label() for w in warnings if w.code in codes]


class DisturbedCycles:
    """Per config (the gate's sample key), the cycles kept although disturbed."""

    def __init__(self) -> None:
        self.by_key: dict[str, dict[int, str]] = {}

    def note(self, key: str, cycle: int, flags: Sequence[str]) -> str | None:
        """Record this cycle's flags; the note for a verdict on the config's cycles so far."""
        if flags:
            self.by_key.setdefault(key, {})[cycle] = ", ".join(flags)
        seen = self.by_key.get(key)
        if not seen:
            return None
        listed = "; ".join(f"cycle {c}: {text}" for c, text in sorted(seen.items()))
        return (
            f"decided on {len(seen)} cycle(s) measured on a disturbed machine ({listed}): "
            "re-run on a quiet machine before trusting it"
        )


def disturbed_refusals(results: Iterable[Any]) -> list[str]:
    """One line per config with a disturbed cycle among the results a baseline would store,
    failed ones included (each result carries its config's ``validity.disturbed_by``; older
    results: the default set)."""
    lines: dict[tuple[str, str], list[str]] = {}
    for r in results:
        if r.metrics is None or r.outcome in ("skipped", "error"):
            continue  # as baseline_file.build: what it would not store cannot taint it
        validity = (getattr(r, "config", None) or {}).get("validity") or {}
        codes = validity.get("disturbed_by", DISTURBANCE_CODES)
        flags = disturbance_flags(getattr(r, "warnings", None) or [], codes)
        if flags:
            lines.setdefault((r.study, r.point_id), []).append(
                f"cycle {r.cycle}: {', '.join(flags)}"
            )
    return [f"{study}::{point}: {'; '.join(found)}" for (study, point), found in lines.items()]


def disturbed_note(name: str, refused: Sequence[str], force_flag: str) -> str:
    """Why baseline ``name`` was not saved: cycles measured on a disturbed machine."""
    return (
        f"baseline {name!r} NOT saved: these configs have cycles measured on a disturbed "
        "machine:\n  " + "\n  ".join(refused) + "\n  re-run on a quiet machine, or store it "
        f"anyway with {force_flag}"
    )
