"""The compatibility tier: pytester sessions with third-party pytest plugins installed.

These plugins change every pytest session once installed (pytest-randomly shuffles, pytest-sugar
rewrites the output), so they live in a separate virtual environment (.ci/run's compat step),
never in the main one. Each inner session disables the plugins that are not under test, so a
test sees one plugin at a time, or the combination it names. Without the plugins the tests are
skipped with the reason; with ``LLEM_REQUIRE_COMPAT=1`` (as CI sets) they fail instead.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

# Plugins of the tier, by the name pytest registers each under (what ``-p no:NAME`` takes).
PLUGINS: dict[str, str] = {
    "randomly": "pytest_randomly",
    "sugar": "pytest_sugar",
    "rerunfailures": "pytest_rerunfailures",
    "repeat": "pytest_repeat",
    "html": "pytest_html",
    "benchmark": "pytest_benchmark",
    "pytest_cov": "pytest_cov",
}


def need(*names: str) -> None:
    """Skip (or, under LLEM_REQUIRE_COMPAT=1, fail) unless these plugins are installed."""
    missing = [n for n in names if importlib.util.find_spec(PLUGINS[n]) is None]
    if not missing:
        return
    message = f"plugins not installed: {', '.join(PLUGINS[n] for n in missing)}"
    if os.environ.get("LLEM_REQUIRE_COMPAT") == "1":
        pytest.fail(f"{message} (LLEM_REQUIRE_COMPAT=1: the compat venv must have them)")
    pytest.skip(f"{message}; the compatibility tier runs in .ci/run's compat venv")


def only(*names: str) -> list[str]:
    """``-p no:X`` for every plugin of the tier except ``names``."""
    need(*names)
    args: list[str] = []
    for name in PLUGINS:
        if name not in names:
            args += ["-p", f"no:{name}"]
    return args
