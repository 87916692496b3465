"""JUnit XML and pytest's xunit2 schema (pytest's default junit_family).

Per-testcase properties are what the mission asks for, and what pytest's xunit2 schema does
not allow (pytest warns the same for ``record_property``): pytest-llem keeps them by default,
says so once, and offers ``llem_junit_properties = suite``, whose XML validates, also under
pytest-xdist (the controller owns the XML; workers have none).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

xmlschema = pytest.importorskip("xmlschema")

StudyText = Callable[..., str]
XSD = Path(__file__).parents[1] / "data" / "xunit2.xsd"


def schema_errors(path: Path) -> list[str]:
    return [str(e.reason) for e in xmlschema.XMLSchema(str(XSD)).iter_errors(str(path))]


def test_testcase_properties_break_xunit2_and_pytest_llem_says_so_once(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makefile(".yaml", study_j=fast_study(tiny_gpt2, "execution: {n_cycles: 2}\n"))
    result = pytester.runpytest("--junitxml=junit.xml", "--llem-results=out")
    result.assert_outcomes(passed=2)
    errors = schema_errors(pytester.path / "junit.xml")
    assert errors and all("Unexpected child with tag 'properties'" in e for e in errors)
    advice = [ln for ln in result.outlines if "pytest's xunit2 schema" in ln]
    assert len(advice) == 1
    result.stdout.fnmatch_lines(["*fix: llem_junit_properties = suite*"])


def test_suite_mode_validates_and_keys_every_metric_by_test_id_under_xdist(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makeini("[pytest]\nllem_junit_properties = suite\n")
    study = fast_study(tiny_gpt2, "sweep:\n  pytorch.batch_size: [1, 2]\n")
    pytester.makefile(".yaml", study_j=study)
    result = pytester.runpytest_subprocess("-n", "2", "--junitxml=junit.xml", "--llem-results=out")
    result.assert_outcomes(passed=2)
    junit = pytester.path / "junit.xml"
    assert schema_errors(junit) == []
    root = ET.parse(junit).getroot()
    assert [c for c in root.iter("testcase") if c.find("properties") is not None] == []
    names = {p.get("name") for p in root.iter("property")}
    for item in ("study_j.yaml::pytorch-bs1", "study_j.yaml::pytorch-bs2"):
        assert f"{item}::llem.output_tokens_per_s" in names
        assert f"{item}::llem.energy_source" in names
    assert not [ln for ln in result.outlines if "pytest's xunit2 schema" in ln]
    # Two workers measuring CPU items on one CPU: said at session start (issue 16, part 3).
    result.stdout.fnmatch_lines(
        ["*-n 2 runs 2 CPU study item(s) on 2 workers*", "*fix: -n 0 for CPU studies*"]
    )


def test_a_bad_mode_names_the_option(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--llem-junit-properties=case")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--llem-junit-properties*testcase or suite*'case'*"])
