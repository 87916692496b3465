"""Per-item timeouts through pytest-timeout: a hung engine fails its item with the stack, and
the session goes on; without pytest-timeout the setting is refused with the install line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

StudyText = Callable[..., str]

HANG_ON_N1 = """
import threading
import pytest, transformers

@pytest.fixture(autouse=True)
def hang_on_n1(request, monkeypatch):
    if request.node.name.endswith("n1"):
        def hang_forever_in_generate(self, *a, **k):
            threading.Event().wait()  # an engine that never returns
        monkeypatch.setattr(transformers.GenerationMixin, "generate", hang_forever_in_generate)
"""


def test_a_hung_engine_fails_its_item_with_the_stack_and_the_session_goes_on(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makeconftest(HANG_ON_N1)
    # Generous: the first item loads the model inside its timeout, on a possibly busy machine.
    study = fast_study(tiny_gpt2, "execution: {timeout_s: 20}\nsweep:\n  n: [1, 2]\n")
    pytester.makefile(".yaml", study_hang=study)
    result = pytester.runpytest("--llem-results=out")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*hang_forever_in_generate*", "*Failed: Timeout (>20.0s)*"])
    items = json.loads((pytester.path / "out" / "report.json").read_text())["items"]
    assert [(i["point_id"], i["outcome"]) for i in items] == [
        ("pytorch-n1", "failed"),
        ("pytorch-n2", "passed"),
    ]


def test_the_ini_default_applies_and_the_study_wins(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makeini("[pytest]\nllem_item_timeout = 0.001\n")
    pytester.makefile(".yaml", study_a=fast_study(tiny_gpt2, "execution: {timeout_s: 300}\n"))
    collected = pytester.inline_run("--llem-results=out", "--collect-only")
    [item] = collected.getcalls("pytest_collection_finish")[0].session.items
    assert item.get_closest_marker("timeout").args == (300.0,)


def test_the_ini_default_marks_items_of_studies_without_their_own(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makeini("[pytest]\nllem_item_timeout = 45\n")
    pytester.makefile(".yaml", study_a=fast_study(tiny_gpt2))
    collected = pytester.inline_run("--llem-results=out", "--collect-only")
    [item] = collected.getcalls("pytest_collection_finish")[0].session.items
    marker = item.get_closest_marker("timeout")
    assert marker.args == (45.0,) and marker.kwargs == {"method": "signal"}


def test_without_pytest_timeout_the_setting_is_refused_with_the_install_line(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makefile(".yaml", study_t=fast_study(tiny_gpt2, "execution: {timeout_s: 5}\n"))
    result = pytester.runpytest("-p", "no:timeout", "--llem-results=out")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*study_t.yaml: execution.timeout_s is set*pytest-timeout*not installed*",
            '*fix: pip install "pytest-llem[[]timeout[]]"*',
        ]
    )


def test_a_bad_ini_timeout_names_the_option(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllem_item_timeout = soon\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini llem_item_timeout*expected a number*'soon'*"])


HANG_IN_LOAD_OF_N1 = """
import threading
import pytest
from pytest_llem.engines.pytorch.engine import TransformersEngine

_load = TransformersEngine.load.__func__

@pytest.fixture(autouse=True)
def hang_in_load_of_n1(request, monkeypatch):
    if request.node.name.endswith("n1"):
        def hang_forever_in_load(cls, *a, **k):
            threading.Event().wait()  # a load longer than any timeout
        monkeypatch.setattr(TransformersEngine, "load", classmethod(hang_forever_in_load))
"""


def test_a_timeout_in_the_model_load_says_so_and_later_items_run(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makeconftest(HANG_IN_LOAD_OF_N1)
    # Generous: item 2 loads the model afresh inside its own timeout, on a possibly busy machine.
    study = fast_study(tiny_gpt2, "execution: {timeout_s: 20}\nsweep:\n  n: [1, 2]\n")
    pytester.makefile(".yaml", study_load=study)
    result = pytester.runpytest("--llem-results=out")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*Failed: Timeout (>20.0s)*",
            "*the item timed out while loading its model*",
            "*fix: raise the timeout above the model load time*",
        ]
    )
    result.stdout.fnmatch_lines(["*1 item(s) timed out while loading their model*study_load*"])


RECORD_IMPORTS_AT_TIMER_START = """
import json, sys
import pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    # Runs where pytest-timeout's own wrapper starts the timer: inside pytest-llem's.
    with open("imports.json", "w") as fh:
        json.dump(sorted(m for m in sys.modules if m.startswith("transformers.models.gpt2")), fh)
    return (yield)
"""


def test_the_models_modules_are_imported_before_the_timer_starts(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    pytester.makeconftest(RECORD_IMPORTS_AT_TIMER_START)
    pytester.makefile(".yaml", study_pre=fast_study(tiny_gpt2, "execution: {timeout_s: 300}\n"))
    result = pytester.runpytest_subprocess("--llem-results=out")  # a fresh interpreter
    result.assert_outcomes(passed=1)
    imported = json.loads((pytester.path / "imports.json").read_text())
    assert "transformers.models.gpt2.modeling_gpt2" in imported
    assert "transformers.models.gpt2.configuration_gpt2" in imported
