"""The server's Prometheus gauges: a small text-format parser and a bounded poller.

vLLM's ``/metrics`` (vllm/v1/metrics/loggers.py, 0.32) exposes ``vllm:num_requests_running``,
``vllm:num_requests_waiting`` and ``vllm:kv_cache_usage_perc`` (a fraction, 1 = full), one
sample per engine (label ``engine``). ``vllm:gpu_cache_usage_perc`` is the name before V1's
rename (deprecated, hidden in the next minor, removed after: vLLM PRs #18354 and #29330); it
is read where the new name is absent. As ML.ENERGY's benchmark does
(mlenergy/benchmark/llm/prometheus.py), engines' running counts are summed and their cache
usage averaged per scrape. ``max_num_seqs`` is not exposed, so the occupancy cap is the
caller's. The parser and the summaries are pure; the poller is a thread with ``urllib``, so
it needs no event loop and never fails a run: a server without ``/metrics`` is "not exposed".
"""

from __future__ import annotations

import math
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

RUNNING = ("vllm:num_requests_running",)
WAITING = ("vllm:num_requests_waiting",)
KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\S+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


@dataclass(frozen=True)
class Sample:
    """One line of the exposition: a metric name, its labels and its value."""

    name: str
    labels: dict[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """Every sample of a Prometheus text exposition (comments and bad lines skipped)."""
    samples: list[Sample] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        name, labels, value = match.groups()
        try:
            number = float(value)  # float() reads NaN, +Inf and -Inf as Prometheus writes them
        except ValueError:
            continue
        samples.append(Sample(name, _labels(labels[1:-1]) if labels else {}, number))
    return samples


def _labels(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in _LABEL.findall(text):
        out[key] = value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
    return out


def gauge(samples: Sequence[Sample], names: Sequence[str], agg: str) -> float | None:
    """The first of ``names`` present, its samples (one per engine) summed or averaged."""
    for name in names:
        values = [s.value for s in samples if s.name == name and not math.isnan(s.value)]
        if values:
            return sum(values) if agg == "sum" else sum(values) / len(values)
    return None


@dataclass(frozen=True)
class Scrape:
    """One scrape: when (client clock) and the gauges read (None where absent)."""

    t_s: float
    running: float | None
    waiting: float | None
    kv_cache: float | None


def read_scrape(t_s: float, text: str) -> Scrape:
    """The gauges this package uses, from one exposition."""
    samples = parse(text)
    return Scrape(
        t_s, gauge(samples, RUNNING, "sum"), gauge(samples, WAITING, "sum"),
        gauge(samples, KV_CACHE, "avg"),
    )  # fmt: skip


@dataclass
class PollResult:
    """What a poller saw: its scrapes, or why there were none.

    Attributes:
        url: the scraped URL.
        scrapes: every successful scrape, in time order.
        exposed: False when the server answered no scrape (``reason`` says how).
        reason: the first failure (``not exposed: HTTP 404``...), None if none failed.
        failures: how many scrapes failed.
    """

    url: str
    scrapes: list[Scrape] = field(default_factory=list)
    exposed: bool = True
    reason: str | None = None
    failures: int = 0

    def summary(
        self, start_s: float | None = None, end_s: float | None = None
    ) -> dict[str, float | None]:
        """Mean and max of each gauge over the scrapes within ``[start_s, end_s]``."""
        inside = [
            s for s in self.scrapes
            if (start_s is None or s.t_s >= start_s) and (end_s is None or s.t_s <= end_s)
        ]  # fmt: skip
        out: dict[str, float | None] = {"gauge_scrapes": float(len(inside))}
        for key in ("running", "waiting", "kv_cache"):
            values = [v for v in (getattr(s, key) for s in inside) if v is not None]
            out[f"{key}_mean"] = sum(values) / len(values) if values else None
            out[f"{key}_max"] = max(values) if values else None
        return out


class MetricsPoller:
    """Scrapes ``url`` every ``interval_s`` on a thread until stopped (at most ``max_scrapes``).

    Args:
        url: the server's ``/metrics`` URL.
        interval_s: time between scrapes.
        timeout_s: each scrape's timeout.
        max_scrapes: the bound on stored scrapes (older ones are kept; polling stops).
        clock: the clock to stamp scrapes with; the client's, so windows line up.
    """

    def __init__(
        self,
        url: str,
        interval_s: float = 0.25,
        timeout_s: float = 2.0,
        max_scrapes: int = 100_000,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.result = PollResult(url)
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._max = max_scrapes
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="llem-metrics-poller", daemon=True)

    def start(self) -> MetricsPoller:
        """Start polling; returns self."""
        self._thread.start()
        return self

    def stop(self) -> PollResult:
        """Stop polling, wait for the thread, and return what was seen."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._timeout_s + 1.0)
        return self.result

    def _loop(self) -> None:
        while not self._stop.is_set() and len(self.result.scrapes) < self._max:
            if not self.scrape_once() and not self.result.scrapes:
                # An HTTP error before any scrape (404: no /metrics) will not change.
                return
            self._stop.wait(self._interval_s)

    def scrape_once(self) -> bool:
        """One scrape, recorded; False when the server answered with an HTTP error."""
        try:
            with urllib.request.urlopen(self.result.url, timeout=self._timeout_s) as response:
                text = response.read().decode("utf-8", "replace")
            self.result.scrapes.append(read_scrape(self._clock(), text))
            self.result.exposed = True
            return True
        except urllib.error.HTTPError as exc:
            self._failed(f"HTTP {exc.code}")
            return False
        except (urllib.error.URLError, OSError, ValueError) as exc:
            self._failed(str(exc))
            return True

    def _failed(self, reason: str) -> None:
        self.result.failures += 1
        if self.result.reason is None:
            self.result.reason = f"not exposed: {reason}" if not self.result.scrapes else reason
        if not self.result.scrapes:
            self.result.exposed = False
