"""Pure statistics against hand-computed values."""

from __future__ import annotations

import math

import pytest

from pytest_llem.stats.descriptive import cv, mean, percentile, slope_per_s, stdev


def test_percentile_matches_linear_interpolation() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 50) == 2.5
    assert percentile(values, 0) == 1.0 and percentile(values, 100) == 4.0
    assert percentile(values, 90) == pytest.approx(3.7)
    assert percentile([5.0], 99) == 5.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_mean_stdev_cv() -> None:
    assert mean([2.0, 4.0]) == 3.0
    assert stdev([2.0, 4.0]) == pytest.approx(math.sqrt(2.0))
    assert stdev([1.0]) == 0.0
    assert cv([2.0, 4.0]) == pytest.approx(math.sqrt(2.0) / 3.0)
    assert cv([0.0, 0.0]) == math.inf


def test_slope() -> None:
    assert slope_per_s([0.0, 1.0, 2.0], [10.0, 12.0, 14.0]) == pytest.approx(2.0)
    assert slope_per_s([1.0], [3.0]) == 0.0
