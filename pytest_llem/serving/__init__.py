"""Serving load: a streaming OpenAI-API client, ML.ENERGY's steady-state window, the figures.

Engine-agnostic: it knows the OpenAI HTTP API only (plus vLLM's optional request fields and
Prometheus gauges), so any server with that API can be measured. aiohttp is imported only
when a run starts (the ``serve`` extra).
"""

from __future__ import annotations

from pytest_llem.serving.arrivals import send_offsets
from pytest_llem.serving.client import run_load
from pytest_llem.serving.errors import ServingError
from pytest_llem.serving.prometheus import MetricsPoller, PollResult
from pytest_llem.serving.ready import health, server_root, wait_ready
from pytest_llem.serving.records import LoadRun, RequestRecord
from pytest_llem.serving.spec import LoadSpec
from pytest_llem.serving.validity import validity
from pytest_llem.serving.window import NoWindow, Slo, Window, find_window, metrics, window_counts

__all__ = [
    "LoadRun",
    "LoadSpec",
    "MetricsPoller",
    "NoWindow",
    "PollResult",
    "RequestRecord",
    "ServingError",
    "Slo",
    "Window",
    "find_window",
    "health",
    "metrics",
    "run_load",
    "send_offsets",
    "server_root",
    "validity",
    "wait_ready",
    "window_counts",
]
