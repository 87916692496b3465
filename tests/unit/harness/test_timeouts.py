"""Per-item timeouts against model loads: the advice texts and how a timeout is recognised."""

from __future__ import annotations

import pytest

from pytest_llem.harness import timeouts


def test_marker_seconds_come_from_the_argument_or_the_keyword() -> None:
    assert timeouts.marker_timeout((5,), {}) == 5.0
    assert timeouts.marker_timeout((), {"timeout": 2.5}) == 2.5
    assert timeouts.marker_timeout((), {"method": "signal"}) is None


def test_a_timeout_not_longer_than_a_load_is_called_out() -> None:
    assert timeouts.too_short(None, 20.0) is None
    assert timeouts.too_short(5.0, None) is None  # no load seen yet: nothing to compare
    assert timeouts.too_short(30.0, 20.0) is None
    note = timeouts.too_short(5.0, 21.3)
    assert note is not None and "5s" in note and "21.3s" in note and "--timeout" in note


def test_pytest_timeouts_failure_is_recognised() -> None:
    with pytest.raises(pytest.fail.Exception) as info:
        pytest.fail("Timeout (>5.0s) from pytest-timeout.")
    assert timeouts.is_timeout(info.value)
    assert not timeouts.is_timeout(RuntimeError("Timeout"))


def test_the_summary_names_the_items_cut_in_their_load() -> None:
    note = timeouts.load_cut_note(["s.yaml::a", "s.yaml::b"], 5.04)
    assert "2 item(s)" in note and "s.yaml::a" in note and "5.0s" in note
