"""Cool-down between items and cycles, as LLenergyMeasure's study runner placed it."""

from __future__ import annotations

from pytest_llem.measure.cooldown import cool_down, gap_before


def test_gaps_follow_the_original_positions() -> None:
    # 3 configs x 2 cycles: experiment gap before every item but the first, plus the cycle
    # gap after each full round of the configs.
    gaps = [gap_before(i, 3, 10.0, 30.0) for i in range(6)]
    assert gaps == [0.0, 10.0, 10.0, 40.0, 10.0, 10.0]
    assert gap_before(5, 3, 0.0, 0.0) == 0.0


def test_cool_down_waits_in_steps_and_shows_the_time_left() -> None:
    slept: list[float] = []
    shown: list[tuple[str, str]] = []
    waited = cool_down(2.5, lambda phase, detail: shown.append((phase, detail)), slept.append)
    assert waited == 2.5
    assert slept == [1.0, 1.0, 0.5]
    assert shown == [("cool-down", "3s left"), ("cool-down", "2s left"), ("cool-down", "1s left")]


def test_no_gap_no_wait() -> None:
    slept: list[float] = []
    assert cool_down(0.0, lambda *_: None, slept.append) == 0.0
    assert slept == []
