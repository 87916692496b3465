"""RAPL energy counters for ``device: cpu`` (``/sys/class/powercap/intel-rapl:*``).

Counters are microjoules that wrap at ``max_energy_range_uj``. The sysfs root is a parameter
so tests can point it at a fake tree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from pytest_llem.energy.meter import EnergyReading, MeterInfo

DEFAULT_ROOT = Path("/sys/class/powercap")


class RaplUnavailable(Exception):  # noqa: N818 - a probe outcome carrying the reason
    """RAPL cannot be read here; ``str()`` is the reason recorded in results."""


@dataclass(frozen=True)
class Zone:
    """One readable RAPL zone (a package, or its dram subzone)."""

    label: str
    energy_file: Path
    max_uj: int


def zones(root: Path = DEFAULT_ROOT) -> list[Zone]:
    """Package zones (``intel-rapl:N``) and their ``dram`` subzones.

    Raises:
        RaplUnavailable: no powercap tree, no package zone, or counters not readable.
    """
    if not root.is_dir():
        raise RaplUnavailable(f"no RAPL: {root} absent")
    found: list[Zone] = []
    for pkg in sorted(root.glob("intel-rapl:*")):
        if pkg.name.count(":") != 1:
            continue
        index = pkg.name.split(":")[1]
        found.append(_zone(pkg, f"package-{index}"))
        for sub in sorted(pkg.glob(f"intel-rapl:{index}:*")):
            if (sub / "name").read_text().strip() == "dram":
                found.append(_zone(sub, f"dram-{index}"))
    if not found:
        raise RaplUnavailable(f"no RAPL: no intel-rapl package zone under {root}")
    return found


def _zone(path: Path, label: str) -> Zone:
    energy = path / "energy_uj"
    try:
        energy.read_text()
        max_uj = int((path / "max_energy_range_uj").read_text())
    except PermissionError:
        raise RaplUnavailable(
            f"no RAPL: {energy} is not readable (run as root or grant read access)"
        ) from None
    except (OSError, ValueError) as exc:
        raise RaplUnavailable(f"no RAPL: cannot read {path}: {exc}") from None
    return Zone(label, energy, max_uj)


def _read(zone: Zone) -> int:
    return int(zone.energy_file.read_text())


class RaplMeter:
    """CPU package (+ DRAM) energy of a window, corrected for counter wraparound."""

    def __init__(self, root: Path = DEFAULT_ROOT) -> None:
        self.zones = zones(root)
        self.info = MeterInfo(source="rapl", method="counter", resolution_j=1e-6)
        self._start: dict[str, int] = {}
        self._t0 = 0.0

    def start(self) -> None:
        """Read every zone's counter."""
        self._t0 = time.perf_counter()
        self._start = {z.label: _read(z) for z in self.zones}

    def stop(self) -> EnergyReading:
        """Read again; a counter that went down wrapped once at ``max_energy_range_uj``."""
        per_zone: dict[str, float] = {}
        for zone in self.zones:
            delta = _read(zone) - self._start[zone.label]
            if delta < 0:
                delta += zone.max_uj
            per_zone[zone.label] = delta / 1e6
        return EnergyReading(
            total_j=sum(per_zone.values()),
            per_device_j=per_zone,
            duration_s=time.perf_counter() - self._t0,
        )

    def close(self) -> None:
        """Nothing to release."""
