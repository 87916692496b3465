"""The manual's options reference lists every flag and ini key that ``pytest --help`` shows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llem.settings import reference

# From the checkout, not the package: tox runs the tests against an installed wheel.
OPTIONS_PAGE = Path(__file__).parents[3] / "docs" / "options.md"
MARKER = "<!-- options -->"


@pytest.fixture(scope="module")
def help_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    # A fresh process in an empty directory: what any user's `pytest --help` shows.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path_factory.mktemp("help"),
    )
    return result.stdout


def test_every_flag_of_pytest_help_is_in_the_reference(help_text: str) -> None:
    # argparse may wrap a help line after a hyphen; the fragment is still a prefix of the flag.
    flags = {f.rstrip("-") for f in re.findall(r"--llem-[a-z-]+", help_text)}
    assert "--llem-results" in flags
    text = reference.markdown()
    assert sorted(f for f in flags if f not in text) == []


def test_every_ini_key_of_pytest_help_is_in_the_reference(help_text: str) -> None:
    keys = set(re.findall(r"llem_[a-z_]+", help_text))
    assert {"llem_results_dir", "llem_docker_env", "llem_study_patterns"} <= keys
    text = reference.markdown()
    assert sorted(k for k in keys if f"`{k}`" not in text) == []


def test_ini_only_keys_have_an_empty_flag_cell() -> None:
    line = next(x for x in reference.markdown().splitlines() if "`llem_runners`" in x)
    assert line.startswith("|  | `llem_runners` | one per line |")


def test_a_flag_shares_its_row_with_its_ini_key() -> None:
    rows = {row.flag: row for row in reference.rows() if row.flag}
    assert rows["--llem-results"].ini == "llem_results_dir"
    assert rows["--llem-require-gpu"].ini_type == "bool"
    assert rows["--llem-json"].ini is None


def test_help_text_is_literal_markdown() -> None:
    text = reference.markdown()
    # A pipe would split the table cell; "<rootdir>" would be read as an HTML tag.
    assert "auto\\|nvml" in text
    assert "&lt;rootdir&gt;" in text
    assert "<rootdir>" not in text
    assert "5%%" not in text


def test_the_options_page_has_the_marker_the_docs_hook_replaces() -> None:
    assert MARKER in OPTIONS_PAGE.read_text(encoding="utf-8")
