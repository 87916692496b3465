"""Power samples integrate to energy."""

from __future__ import annotations

import pytest

from pytest_llem.energy.meter import trapezoid


def test_trapezoid_integrates_power_to_energy() -> None:
    # 100 W for 2 s then ramp to 200 W over 1 s: 200 J + 150 J
    assert trapezoid([0.0, 2.0, 3.0], [100.0, 100.0, 200.0]) == pytest.approx(350.0)
    with pytest.raises(ValueError):
        trapezoid([0.0], [1.0, 2.0])
