"""Concurrent measurement on one device: detected by the items themselves, across processes.

Two xdist workers (or two pytest sessions sharing a results directory) measuring on the same
CPU or the same GPU at the same time measure each other: neither figure is a measurement of its
config. Each item marks itself active on its devices with a file in
``<results>/.active/<device>/`` for the span of its run (load, warmup, window: another item's
load disturbs a window as much as its window does), and:

- at its start, every other active item on the device overlaps it: both get told (a mark file
  for the other, named after it);
- at its end, any item still active, or that left a mark for it, overlapped it.

Whichever of two overlapping items starts second sees the first, so both are always told, with
no clock and no polling. Files of dead processes (same host) are ignored and removed.
"""

from __future__ import annotations

import json
import os
import platform
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pytest_llem.results.records import ValidityWarning
from pytest_llem.study.experiment import ExperimentConfig

CODE = "concurrent_measurement"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def device_keys(
    config: ExperimentConfig, env: Mapping[str, str] | None = None, host: str | None = None
) -> list[str]:
    """The devices an item measures on: this host's CPU, or each CUDA device it may use."""
    env = os.environ if env is None else env
    host = host or platform.node()
    if config.device == "cuda":
        visible = [v.strip() for v in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
        return [f"{host}/cuda/{v}" for v in visible or ["all"]]
    return [f"{host}/cpu"]


def _pid_alive(host: str, pid: int) -> bool:
    if host != platform.node():
        return True  # another machine sharing the directory: cannot tell, assume it runs
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Span:
    """One item's active span on its devices; ``end()`` says who overlapped it."""

    registry: DeviceActivity
    token: str
    nodeid: str
    dirs: list[Path]
    others: dict[str, str] = field(default_factory=dict)  # token -> nodeid

    def end(self) -> list[str]:
        """Leave the devices; return the nodeids of items that ran on them meanwhile."""
        for folder in self.dirs:
            try:
                self.others.update(self.registry.active(folder, exclude=self.token))
                for mark in folder.glob(f"{self.token}.by.*"):
                    self.others[mark.name.rsplit(".by.", 1)[1]] = mark.read_text("utf-8")
                    mark.unlink(missing_ok=True)
                (folder / f"{self.token}.json").unlink(missing_ok=True)
            except OSError:
                continue  # detection is best effort: never fail an item over a lock file
        return sorted(set(self.others.values()))


class DeviceActivity:
    """Active-item files under ``root`` (``<results>/.active``), one folder per device."""

    def __init__(
        self,
        root: Path,
        alive: Callable[[str, int], bool] = _pid_alive,
        pid: int | None = None,
        host: str | None = None,
    ) -> None:
        self.root = root
        self.alive = alive
        self.pid = os.getpid() if pid is None else pid
        self.host = host or platform.node()

    def active(self, folder: Path, exclude: str) -> dict[str, str]:
        """token -> nodeid of the live items active in ``folder`` (dead ones are removed)."""
        out: dict[str, str] = {}
        for path in folder.glob("*.json"):
            token = path.stem
            if token == exclude:
                continue
            try:
                data = json.loads(path.read_text("utf-8"))
            except (OSError, ValueError):
                continue  # being written or removed right now
            if self.alive(str(data.get("host")), int(data.get("pid", 0))):
                out[token] = str(data.get("nodeid"))
            else:
                path.unlink(missing_ok=True)
        return out

    def begin(self, keys: list[str], nodeid: str) -> Span:
        """Mark ``nodeid`` active on ``keys``; tell the items already active there."""
        token = f"{_UNSAFE.sub('_', self.host)}-{self.pid}-{uuid.uuid4().hex[:8]}"
        span = Span(self, token, nodeid, [])
        for key in keys:
            folder = self.root / _UNSAFE.sub("_", key)
            try:
                folder.mkdir(parents=True, exist_ok=True)
                record = {"host": self.host, "pid": self.pid, "nodeid": nodeid}
                (folder / f"{token}.json").write_text(json.dumps(record), "utf-8")
                span.dirs.append(folder)
                others = self.active(folder, exclude=token)
                for other in others:
                    (folder / f"{other}.by.{token}").write_text(nodeid, "utf-8")
                span.others.update(others)
            except OSError:
                continue
        return span


def warning(others: list[str], keys: list[str]) -> ValidityWarning:
    """The validity warning of an item that shared its device with ``others``."""
    shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
    return ValidityWarning(
        code=CODE,
        message=(
            f"measured while {shown} ran on the same device ({', '.join(keys)}): the figures "
            "are not this config's alone; run CPU items with -n 0, GPU items one worker per GPU"
        ),
    )
