"""The one private pytest name pytest-llem uses for JUnit, and the xunit2 advice."""

from __future__ import annotations

import inspect

import pytest

from pytest_llem.report import junit_suite


def test_pytest_still_keeps_its_logxml_under_xml_key() -> None:
    # If this fails, pytest moved or renamed a private name: junit_suite.log_xml must follow.
    from _pytest import junitxml

    assert isinstance(junitxml.xml_key, pytest.StashKey)
    params = list(inspect.signature(junitxml.LogXML.add_global_property).parameters)
    assert params == ["self", "name", "value"]


def test_add_writes_testsuite_properties_named_by_test_id(pytestconfig: pytest.Config) -> None:
    from _pytest.junitxml import LogXML, xml_key

    xml = LogXML("unused.xml", None, family="xunit2")
    pytestconfig.stash[xml_key] = xml
    try:
        assert junit_suite.add(pytestconfig, "s.yaml::a-c1", [("llem.cycle", 1)])
    finally:
        del pytestconfig.stash[xml_key]
    assert xml.global_properties == [("s.yaml::a-c1::llem.cycle", "1")]
    assert not junit_suite.add(pytestconfig, "s.yaml::a-c1", [("llem.cycle", 1)])


def test_the_xunit2_advice_comes_only_when_the_xml_would_not_validate() -> None:
    note = junit_suite.xunit2_note("xunit2", "testcase", junitxml=True)
    assert note is not None and "llem_junit_properties = suite" in note
    assert junit_suite.xunit2_note("xunit1", "testcase", junitxml=True) is None
    assert junit_suite.xunit2_note("legacy", "testcase", junitxml=True) is None
    assert junit_suite.xunit2_note("xunit2", "suite", junitxml=True) is None
    assert junit_suite.xunit2_note("xunit2", "testcase", junitxml=False) is None
