"""Fixtures of the plugin. Items request them through their ``callobj`` (see collect.py).

Override any of them in a conftest.py to change how items are prepared or dispatched.
"""

from __future__ import annotations

import pytest

from pytest_llem.harness.collect import ExperimentItem
from pytest_llem.harness.session import SESSION_KEY, ItemRef, LlemSession
from pytest_llem.measure.idle_power import IdleBaselines
from pytest_llem.preflight.check import Check, should_skip
from pytest_llem.runners.run_spec import Runner


def _ref(request: pytest.FixtureRequest) -> ItemRef:
    item = request.node
    if not isinstance(item, ExperimentItem):
        raise pytest.UsageError(
            f"{request.fixturename} serves pytest-llem study items only, not {item.nodeid}"
        )
    return item.ref


@pytest.fixture(scope="session")
def llem_session(pytestconfig: pytest.Config) -> LlemSession:
    """This process's LlemSession (runners, model cache, host facts)."""
    return pytestconfig.stash[SESSION_KEY]


@pytest.fixture(scope="session")
def llem_idle_baseline(llem_session: LlemSession) -> IdleBaselines:
    """The session's idle-baseline provider (measured once per device set, cached on disk)."""
    return llem_session.baselines


@pytest.fixture
def llem_preflight(request: pytest.FixtureRequest, llem_session: LlemSession) -> list[Check]:
    """Pre-flight checks of the requesting item.

    Missing hardware skips the item (unless --llem-require-gpu); the remaining problems are
    returned and fail the item in its call phase, all listed together.
    """
    ref = _ref(request)
    if llem_session.resumed(ref) is not None:
        return []  # reported from the resumed run's results: nothing runs here
    checks = llem_session.checks_for(ref)
    if should_skip(checks, llem_session.settings.require_gpu):
        # The fix travels with the reason: a skip is where a user learns how to run the item.
        pytest.skip("; ".join(f"{c.message} (fix: {c.fix})" for c in checks))
    return checks


@pytest.fixture
def llem_runner(request: pytest.FixtureRequest, llem_session: LlemSession) -> Runner:
    """The runner the requesting item dispatches to: local, or a container (docker SDK)."""
    return llem_session.runner_for(_ref(request))
