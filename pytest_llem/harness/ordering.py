"""Item order: did the study's items run in its ``cycle_order``, and if not, who decided?

pytest-llem does not fight reordering plugins (pytest-randomly, pytest-random-order, ``--ff``):
the gate decides a config once every one of its cycles has been measured, wherever they ran
(see ``gate.apply.Gate.completes``). What it does is say so, and record the order and the seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from pytest_llem.harness.collect import ExperimentItem
from pytest_llem.harness.session import SESSION_KEY
from pytest_llem.settings import resolve

# Plugins known to reorder items, by the name pytest registers them under.
REORDERING_PLUGINS: dict[str, str] = {
    "randomly": "pytest-randomly",
    "random_order": "pytest-random-order",
    "reverse": "pytest-reverse",
}


def moved_items(items: Sequence[pytest.Item]) -> list[str]:
    """Names of study items that run before an item they follow in their study's plan."""
    last: dict[str, int] = {}
    moved: list[str] = []
    for item in items:
        if not isinstance(item, ExperimentItem):
            continue
        key = str(item.path)
        if item.plan_index < last.get(key, -1):
            moved.append(item.nodeid)
        last[key] = max(last.get(key, -1), item.plan_index)
    return moved


def record(config: pytest.Config, items: Sequence[pytest.Item]) -> dict[str, Any] | None:
    """The order record of this process's study items (None when there are none)."""
    study = [i for i in items if isinstance(i, ExperimentItem)]
    if not study:
        return None
    moved = moved_items(items)
    by = [name for key, name in REORDERING_PLUGINS.items() if config.pluginmanager.hasplugin(key)]
    orders = sorted({i.plan.execution.cycle_order for i in study})
    return {
        "study_order": not moved,
        "cycle_order": orders,
        "reordered_by": by if moved else [],
        "seed": resolve.reorder_seed(config) if moved else None,
        "first_moved": moved[0] if moved else None,
    }


def note(order: dict[str, Any]) -> str | None:
    """The terminal line for a reordered run (None when the study order held)."""
    if order["study_order"]:
        return None
    who = ", ".join(order["reordered_by"]) or "a plugin or option (e.g. --ff, --nf)"
    seed = f" (seed {order['seed']})" if order["seed"] is not None else ""
    return (
        f"item order: {who}{seed} reordered the study items (cycle_order "
        f"{'/'.join(order['cycle_order'])} not kept, e.g. {order['first_moved']} ran early); "
        "the gate decided each config once all its cycles had run, and report.json records "
        "the order that ran"
    )


class OrderCheck:
    """Registered as a plugin: checks the final order after every other plugin reordered."""

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        """Hand the order record to this process's LlemSession (it reports it at the end)."""
        session = config.stash.get(SESSION_KEY, None)
        if session is None:
            return
        session.order = record(config, items)
        line = note(session.order) if session.order is not None else None
        if line is not None:
            session.notes.append(line)
