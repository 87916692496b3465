"""JUnit testsuite-level properties, for consumers that validate against pytest's xunit2 schema.

pytest's xunit2 schema allows ``<properties>`` under ``<testsuite>`` only; per-testcase
properties (pytest's ``record_property``, and ``user_properties``) break it. In ``suite`` mode
each item's ``llem.*`` properties become testsuite properties named ``<nodeid>::llem.<name>``.

They are added on the controller, which owns pytest's ``LogXML`` (xdist workers have none),
through ``LogXML.add_global_property`` (public on the object, as ``record_testsuite_property``
uses it). Finding the object takes ``_pytest.junitxml.xml_key``, the one private name used
here; tests/unit/report/test_junit_suite.py fails loudly if pytest renames or moves it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

SEPARATOR = "::"


def log_xml(config: pytest.Config) -> Any | None:
    """pytest's LogXML of this session, or None (no --junitxml, an xdist worker)."""
    from _pytest.junitxml import xml_key  # private: see the module docstring

    return config.stash.get(xml_key, None)


def add(config: pytest.Config, nodeid: str, properties: Iterable[tuple[str, object]]) -> bool:
    """Add an item's properties to the testsuite; False when no JUnit XML is being written."""
    xml = log_xml(config)
    if xml is None:
        return False
    for name, value in properties:
        xml.add_global_property(f"{nodeid}{SEPARATOR}{name}", value)
    return True


def xunit2_note(family: str, mode: str, junitxml: bool) -> str | None:
    """Advice when the JUnit XML will not validate against pytest's xunit2 schema."""
    if not junitxml or mode != "testcase" or family != "xunit2":
        return None
    return (
        "JUnit: llem.* metrics are written as testcase <properties>, which pytest's xunit2 "
        "schema (junit_family default) does not allow, as pytest warns for record_property; "
        "consumers that validate will reject the file\n"
        "  fix: llem_junit_properties = suite (testsuite properties named <nodeid>::llem.<name>, "
        "or --llem-junit-properties suite), or junit_family = xunit1"
    )
