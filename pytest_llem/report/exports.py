"""``--llem-export KIND=PATH``: each kind's writer.

The kinds the option accepts are ``settings.converters.EXPORT_KINDS`` (the settings layer
cannot import this one); a unit test keeps the two lists the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pytest_llem.report import bmf, github_benchmark
from pytest_llem.results.records import ExperimentResult

Writer = Callable[[Sequence[ExperimentResult], Path], str]

WRITERS: dict[str, Writer] = {
    "github-benchmark": github_benchmark.write,  # a directory: one file per better direction
    "bmf": bmf.write,  # a file
}


def write(kind: str, results: Sequence[ExperimentResult], target: Path) -> str:
    """Write one export; return the terminal's note, saying so when it could not be written.

    A file that cannot be written ends no session: its measurements are already in the
    results and the report, and the note names the export and the error.
    """
    try:
        return WRITERS[kind](results, target)
    except OSError as exc:
        return f"--llem-export {kind}={target} NOT written: {exc}"
