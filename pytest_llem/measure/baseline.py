"""Idle baseline power: what the devices draw doing nothing, subtracted from window energy."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Baseline:
    """Idle power handed to the protocol (None when there is no baseline)."""

    power_w: float | None = None
    age_s: float | None = None
    stale: bool = False
