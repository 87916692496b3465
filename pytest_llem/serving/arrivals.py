"""When each request of a serving run is sent: the same distributions as ``vllm bench serve``.

vLLM's ``get_request`` (vllm/benchmarks/serve.py) draws each gap between sends from a gamma
distribution with shape ``burstiness`` and scale ``1 / (rate * burstiness)`` (burstiness 1 is
a Poisson process), takes the running sum, and rescales it so the last request goes out at
exactly ``n / rate`` seconds; a rate of ``inf`` sends every request at t = 0, and an infinite
burstiness gives constant gaps of ``1 / rate``. The same is done here with a seeded
``random.Random`` (``gammavariate``), so a schedule is reproducible without numpy.
"""

from __future__ import annotations

import math
import random

ARRIVALS = ("poisson", "constant", "gamma")


def send_offsets(
    n: int,
    rate: float,
    arrival: str = "poisson",
    burstiness: float = 1.0,
    seed: int = 0,
) -> list[float]:
    """Send times in seconds from the start of the run, one per request, non-decreasing.

    Args:
        n: number of requests (at least 1).
        rate: target requests per second, ``math.inf`` for all at once.
        arrival: ``poisson`` (gamma of shape 1), ``constant`` (gaps of ``1 / rate``) or
            ``gamma`` (shape ``burstiness``: below 1 burstier than Poisson, above 1 smoother).
        burstiness: the gamma shape; only ``gamma`` reads it.
        seed: seeds the draws, so equal arguments give equal schedules.

    Raises:
        ValueError: on a non-positive count, rate or burstiness, or an unknown arrival.
    """
    if n < 1:
        raise ValueError(f"a serving run needs at least one request, got n={n}")
    if not rate > 0:
        raise ValueError(f"rate must be a positive number of requests/s or inf, got {rate}")
    if arrival not in ARRIVALS:
        raise ValueError(f"unknown arrival {arrival!r}; choose one of {', '.join(ARRIVALS)}")
    if not burstiness > 0:
        raise ValueError(f"burstiness must be positive, got {burstiness}")
    if math.isinf(rate):
        return [0.0] * n
    gaps = _gaps(n, rate, arrival, burstiness, random.Random(seed))
    offsets: list[float] = []
    total = 0.0
    for gap in gaps:
        total += gap
        offsets.append(total)
    # vLLM rescales so that the schedule lasts exactly n / rate: the sum of n random gaps is
    # off by a few percent, which would move throughput between seeds.
    scale = (n / rate) / offsets[-1] if offsets[-1] > 0 else 1.0
    return [t * scale for t in offsets]


def _gaps(n: int, rate: float, arrival: str, burstiness: float, rng: random.Random) -> list[float]:
    if arrival == "constant":
        return [1.0 / rate] * n
    shape = 1.0 if arrival == "poisson" else burstiness
    scale = 1.0 / (rate * shape)
    return [rng.gammavariate(shape, scale) for _ in range(n)]
