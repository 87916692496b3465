"""How long a study will take, said before it runs.

Two sources, the better first: past results of the same configs in the results directory
(each item's wall time and model load), and, for configs never run here, the protocol's own
lower bounds (the measured window's minimum duration, the thermal floor, the cool-down gaps)
plus the idle baseline once per session. Model loads with no history are counted, not timed:
the estimate says so rather than guess.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llem.study.experiment import ExperimentConfig

HISTORY_LINES = 20_000  # the newest records read from results.jsonl (it only grows)


@dataclass(frozen=True)
class Past:
    """What earlier runs here say of one config: seconds per item without its load, and the
    load itself when one happened; ``family`` is its model, backend and device, so that a
    config never run here can be timed from a sibling (another batch size, say)."""

    run_s: float
    load_s: float | None
    family: str = ""


def family(config: dict[str, Any] | ExperimentConfig) -> str:
    """``model|backend|device``: configs that load the same model on the same device."""
    data = config if isinstance(config, dict) else config.model_dump(mode="json")
    return f"{data.get('model')}|{data.get('backend')}|{data.get('device')}"


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    try:
        return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()
    except ValueError:
        return None


def read_history(jsonl: Path, limit: int = HISTORY_LINES) -> dict[str, Past]:
    """The latest passed record of each config hash in a results file (empty when none)."""
    try:
        lines = jsonl.read_text(encoding="utf-8").splitlines()[-limit:]
    except OSError:
        return {}
    out: dict[str, Past] = {}
    for line in lines:
        try:
            record: dict[str, Any] = json.loads(line)
        except ValueError:
            continue  # a torn last line of a crashed run
        if record.get("outcome") != "passed" or record.get("resumed"):
            continue
        total = _seconds(record.get("started_at"), record.get("finished_at"))
        if total is None:
            continue
        load = record.get("model_load_s") if not record.get("model_cached") else None
        run = max(0.0, total - (load or 0.0))
        previous = out.get(str(record.get("config_hash")))
        out[str(record.get("config_hash"))] = Past(
            run,
            load if load is not None else (previous.load_s if previous else None),
            family(record.get("config") or {}),
        )
    return out


def floor_s(config: ExperimentConfig) -> float:
    """The least an item of ``config`` can take outside any model load: its window and its
    thermal floor (warmup batches come on top and are not known before they run)."""
    thermal = config.thermal.min_s if config.thermal.enabled else 0.0
    return config.window.min_duration_s + thermal


@dataclass(frozen=True)
class Estimate:
    """A study's estimated wall time and what it rests on."""

    seconds: float
    from_history: int  # items timed from past results of the same config
    from_siblings: int  # items timed from past results of a config of the same model
    from_bounds: int  # items from the protocol's lower bounds
    untimed_loads: int  # planned model loads with no past load to time them
    skipped: int = 0  # items pre-flight will skip here (no GPU...): not estimated
    skip_reason: str = ""

    def text(self) -> str:
        """``estimated 6 min 20 s (...)``: a lower bound says what it leaves out."""
        basis = []
        if self.from_history:
            basis.append(f"{self.from_history} item(s) from past results here")
        if self.from_siblings:
            basis.append(f"{self.from_siblings} from past results of the same model here")
        if self.from_bounds:
            basis.append(
                f"{self.from_bounds} from the measured window and thermal floor alone, without "
                "warmup"
            )
        if self.untimed_loads:
            basis.append(f"{self.untimed_loads} model load(s) not timed: none ran here before")
        if not basis and self.skipped:
            return (
                f"not estimated: {self.skipped} item(s) cannot run here (pre-flight: "
                f"{self.skip_reason})"
            )
        lead = "at least " if self.from_bounds or self.untimed_loads else ""
        text = f"estimated {lead}{duration(self.seconds)} ({'; '.join(basis)})"
        if self.skipped:
            text += (
                f"; {self.skipped} item(s) cannot run here (pre-flight: {self.skip_reason}), "
                "not estimated"
            )
        return text


def duration(seconds: float) -> str:
    """``45 s``, ``6 min 20 s``, ``1 h 5 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def _typical(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]  # the median: one slow run on a busy day does not rule


def estimate(
    configs: Sequence[tuple[str, ExperimentConfig, int]],
    loads: int,
    history: Mapping[str, Past],
    gaps_s: float,
    baselines_s: Iterable[float] = (),
) -> Estimate:
    """The wall time of ``configs`` (config hash, config, cycles to run) with ``loads`` model
    loads, ``gaps_s`` of cool-down in all, and idle baselines still to measure.

    A config never run here is timed from a sibling that was (same model, backend and
    device); failing that, from the protocol's lower bounds, and the estimate says "at least".
    Loads are timed from past loads of the same models, else of any model run here.
    """
    seconds = gaps_s + sum(baselines_s)
    timed = siblings = bounded = 0
    by_family: dict[str, list[float]] = {}
    for record in history.values():
        by_family.setdefault(record.family, []).append(record.run_s)
    for config_hash, config, cycles in configs:
        past = history.get(config_hash)
        kin = by_family.get(family(config))
        if past is not None:
            seconds += past.run_s * cycles
            timed += cycles
        elif kin:
            seconds += _typical(kin) * cycles
            siblings += cycles
        else:
            seconds += floor_s(config) * cycles
            bounded += cycles
    families = {family(config) for _, config, _ in configs}
    load_times = [
        p.load_s for p in history.values() if p.load_s is not None and p.family in families
    ] or [p.load_s for p in history.values() if p.load_s is not None]
    untimed = 0
    if load_times and loads:
        seconds += loads * _typical(load_times)
    else:
        untimed = loads
    return Estimate(seconds, timed, siblings, bounded, untimed)
