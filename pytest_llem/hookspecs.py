"""Hooks pytest-llem adds to pytest (registered in ``pytest_addhooks``, as pytest-xdist does
with its ``newhooks.py``). Plugins and conftest files implement them."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec
def pytest_llem_worker_summary(config: pytest.Config, summary: dict[str, Any]) -> None:
    """A process that ran items reports its summary: ``worker``, ``items_run``,
    ``model_loads`` and ``model_load_s`` (loads behind its measured items, in-process or in
    containers, and their seconds), ``cuda_visible_devices`` and ``notes`` (advice for the
    terminal).

    Called in the process that writes the report: directly in a single-process run, and on
    the xdist controller for each worker (whose summary travels in ``workeroutput``).
    """
