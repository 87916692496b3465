"""Fixtures of the plugin. Items request them through their ``callobj`` (see collect.py).

Override any of them in a conftest.py to change how items are prepared or dispatched.
"""

from __future__ import annotations

import pytest

from pytest_llem.session import SESSION_KEY, LlemSession


@pytest.fixture(scope="session")
def llem_session(pytestconfig: pytest.Config) -> LlemSession:
    """This process's LlemSession (runners, model cache)."""
    return pytestconfig.stash[SESSION_KEY]


@pytest.fixture
def llem_preflight(request: pytest.FixtureRequest, llem_session: LlemSession) -> None:
    """Per-item pre-flight checks (a skip or a recorded failure before the item runs)."""
