"""Every example a flag's help gives parses when pasted (issue 27: --llem-ab's did not)."""

from __future__ import annotations

import re
import shlex

import pytest

from pytest_llem.settings.table import OPTIONS

EXAMPLES = [
    (opt, match.group(1))
    for opt in OPTIONS
    for match in re.finditer(rf"{re.escape(opt.cli)} ('[^']*'|\S+)", opt.help)
]


def test_the_help_texts_give_examples() -> None:
    assert any(opt.name == "ab" for opt, _ in EXAMPLES)


@pytest.mark.parametrize(("opt", "example"), EXAMPLES, ids=[o.name for o, _ in EXAMPLES])
def test_a_pasted_example_parses(opt: object, example: str) -> None:
    from pytest_llem.settings.table import Option

    assert isinstance(opt, Option)
    (value,) = shlex.split(example)  # as the shell hands it to pytest: one argument
    opt.convert(value)
