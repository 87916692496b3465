"""RAPL on a fake sysfs tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_llem.energy.rapl import RaplMeter, RaplUnavailable, zones


def set_uj(root: Path, zone: str, value: int) -> None:
    (root / zone / "energy_uj").write_text(f"{value}\n")


def test_package_and_dram_zones(fake_rapl: Path) -> None:
    assert [z.label for z in zones(fake_rapl)] == ["package-0", "dram-0"]


def test_window_energy_with_wraparound(fake_rapl: Path) -> None:
    meter = RaplMeter(fake_rapl)
    set_uj(fake_rapl, "intel-rapl:0", 262143328850 - 1_000_000)  # 1 J before wrapping
    set_uj(fake_rapl, "intel-rapl:0/intel-rapl:0:0", 5_000_000)
    meter.start()
    set_uj(fake_rapl, "intel-rapl:0", 2_000_000)  # wrapped: 1 J + 2 J
    set_uj(fake_rapl, "intel-rapl:0/intel-rapl:0:0", 5_500_000)
    reading = meter.stop()
    assert reading.per_device_j == pytest.approx({"package-0": 3.0, "dram-0": 0.5})
    assert reading.total_j == pytest.approx(3.5)
    assert meter.info.source == "rapl" and meter.info.resolution_j == 1e-6


def test_absent_tree_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(RaplUnavailable, match="powercap absent"):
        zones(tmp_path / "powercap")


def test_unreadable_counter(fake_rapl: Path) -> None:
    (fake_rapl / "intel-rapl:0" / "max_energy_range_uj").write_text("not a number")
    with pytest.raises(RaplUnavailable, match="cannot read"):
        zones(fake_rapl)
