"""The test suite's own fixtures restore what they change."""

from __future__ import annotations

import os

import pytest

from tests.conftest import unset_env

NAME = "LLEM_TEST_UNSET_ENV_PROBE"


@pytest.mark.parametrize("before", [None, "original"])
def test_unset_env_restores_absent_and_present_variables(before: str | None) -> None:
    if before is None:
        os.environ.pop(NAME, None)
    else:
        os.environ[NAME] = before
    with pytest.MonkeyPatch.context() as mp:
        unset_env(mp, NAME)
        assert NAME not in os.environ
        os.environ.setdefault(NAME, "set by the code under test")  # as the vLLM engine does
    assert os.environ.get(NAME) == before
    os.environ.pop(NAME, None)
