"""Hooks pytest-llem adds to pytest (registered in ``pytest_addhooks``, as pytest-xdist does
with its ``newhooks.py``). Plugins and conftest files implement them."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llem.study.backends import BackendSpec


@pytest.hookspec
def pytest_llem_backends() -> list[BackendSpec]:
    """Backends this plugin or conftest adds (pytest-llem's own come through it too).

    Called once per process at configure time, so implement it in an installed plugin or in
    the rootdir's ``conftest.py`` (conftest files deeper down load too late). Each result is a
    list of ``BackendSpec``; a name registered twice with different specs is a usage error.
    See the manual, docs/backends.md.
    """
    return []  # a specification: pluggy never calls this body


@pytest.hookspec
def pytest_llem_worker_summary(config: pytest.Config, summary: dict[str, Any]) -> None:
    """A process that ran items reports its summary: ``worker``, ``items_run``,
    ``model_loads`` and ``model_load_s`` (loads behind its measured items, in-process or in
    containers, and their seconds), ``cuda_visible_devices`` and ``notes`` (advice for the
    terminal).

    Called in the process that writes the report: directly in a single-process run, and on
    the xdist controller for each worker (whose summary travels in ``workeroutput``).
    """
