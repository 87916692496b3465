"""Arrival schedules: vLLM's distributions, seeded, rescaled to end at n / rate."""

from __future__ import annotations

import math

import pytest

from pytest_llem.serving.arrivals import send_offsets
from pytest_llem.stats.descriptive import mean, stdev


def _gaps(offsets: list[float]) -> list[float]:
    return [b - a for a, b in zip([0.0, *offsets[:-1]], offsets, strict=True)]


def test_inf_sends_everything_at_once() -> None:
    assert send_offsets(5, math.inf) == [0.0] * 5
    assert send_offsets(3, math.inf, "gamma", burstiness=0.3) == [0.0] * 3


def test_constant_gaps_end_at_n_over_rate() -> None:
    offsets = send_offsets(4, 2.0, "constant")
    assert offsets == pytest.approx([0.5, 1.0, 1.5, 2.0])


@pytest.mark.parametrize(
    ("arrival", "burstiness", "cv"),
    [("poisson", 1.0, 1.0), ("gamma", 0.5, math.sqrt(2.0)), ("gamma", 4.0, 0.5)],
)
def test_gaps_follow_the_gamma_law(arrival: str, burstiness: float, cv: float) -> None:
    """Gamma(shape k) gaps have mean 1/rate and a coefficient of variation of 1/sqrt(k)."""
    n, rate = 20_000, 8.0
    offsets = send_offsets(n, rate, arrival, burstiness=burstiness, seed=3)
    gaps = _gaps(offsets)
    assert offsets[-1] == pytest.approx(n / rate)  # vLLM's rescaling
    assert mean(gaps) == pytest.approx(1.0 / rate, rel=1e-9)
    assert stdev(gaps) / mean(gaps) == pytest.approx(cv, rel=0.05)
    assert all(g >= 0 for g in gaps)


def test_poisson_ignores_burstiness_and_the_seed_decides() -> None:
    assert send_offsets(50, 5.0, "poisson", burstiness=0.2, seed=7) == send_offsets(50, 5.0, seed=7)
    assert send_offsets(50, 5.0, seed=7) != send_offsets(50, 5.0, seed=8)
    assert send_offsets(50, 5.0, seed=7) == send_offsets(50, 5.0, seed=7)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((0, 1.0), "at least one request"),
        ((3, 0.0), "rate must be a positive"),
        ((3, -1.0), "rate must be a positive"),
        ((3, math.nan), "rate must be a positive"),
        ((3, 1.0, "uniform"), "unknown arrival 'uniform'; choose one of poisson, constant, gamma"),
        ((3, 1.0, "gamma", 0.0), "burstiness must be positive"),
    ],
)
def test_bad_arguments_are_refused(args: tuple[object, ...], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        send_offsets(*args)  # type: ignore[arg-type]
