"""A corpus of malformed and hostile study files: every one is a clear StudyError naming the
file (and line where there is one), within bounded time and memory."""

from __future__ import annotations

import json
import shutil
import tracemalloc
from pathlib import Path

import pytest

from pytest_llem.errors import StudyError
from pytest_llem.testing import load_study

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
EXPECTED: dict[str, str] = json.loads((CORPUS / "expected.json").read_text(encoding="utf-8"))


def test_the_corpus_is_big_enough() -> None:
    assert len(EXPECTED) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_hostile_file_is_a_clear_error(name: str, tmp_path: Path) -> None:
    study = tmp_path / "project" / name
    study.parent.mkdir()
    shutil.copy(CORPUS / name, study)
    tracemalloc.start()
    try:
        with pytest.raises(StudyError) as err:
            load_study(study, root=study.parent)
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    text = str(err.value)
    assert EXPECTED[name] in text, text
    assert str(study) in text  # the file is named
    # Memory, not wall time, shows a bomb was refused early (time swings on a loaded machine).
    assert peak < 300_000_000, peak
    for problem in err.value.problems:
        # every problem names its line and a fix (a file that is not a mapping: line 1)
        assert problem.message and problem.fix and problem.line, problem


def test_lines_are_reported_where_the_yaml_has_them(tmp_path: Path) -> None:
    study = tmp_path / "study.yaml"
    shutil.copy(CORPUS / "unknown_top.yaml", study)
    with pytest.raises(StudyError) as err:
        load_study(study)
    assert [p.line for p in err.value.problems] == [2, 3]


def test_symlinked_base_outside_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("model: m\n")
    root = tmp_path / "project"
    root.mkdir()
    (root / "common.yaml").symlink_to(outside)
    study = root / "study.yaml"
    study.write_text("base: common.yaml\n")
    with pytest.raises(StudyError, match="outside the rootdir"):
        load_study(study, root=root)


def test_a_session_over_the_corpus_reports_errors_and_never_crashes(
    pytester: pytest.Pytester,
) -> None:
    for name in EXPECTED:
        shutil.copy(CORPUS / name, pytester.path / f"study_{name}")
    result = pytester.runpytest_subprocess("--collect-only", "-q", "-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out
    assert out.count("ERROR collecting") + out.count("ERROR study_") >= len(EXPECTED) - 1
    assert result.ret == pytest.ExitCode.INTERRUPTED
