"""``python -m pytest_llem migrate [--check] FILE...``: rewrite LLenergyMeasure names in place.

The edits come from the same rewrite collection applies (``study.compat``), made on the text
line by line so that comments and layout stay. Where a line edit cannot express a change
(flow mappings, a ``runners:`` inside an experiment) the file is re-written by PyYAML instead,
and comments are lost (PyYAML does not keep them; the output says so). Either way the result
is loaded again and must give the same points and config hashes, or nothing is written.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from pytest_llem import study
from pytest_llem.engines.builtin import BUILTIN
from pytest_llem.errors import LlemError, StudyError
from pytest_llem.study import compat, loader
from pytest_llem.study.plan import StudyPlan


class _NoLineEditError(Exception):
    """A change the line editor cannot make; the file is re-dumped instead."""


def _key_re(key: str) -> re.Pattern[str]:
    quoted = re.escape(key)
    return re.compile(rf"^(\s*(?:-\s+)?)(['\"]?){quoted}\2(\s*:)")


def _content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _indent(line: str) -> int:
    match = re.match(r"\s*(?:-\s+)?", line)
    return match.end() if match else 0


def _block_end(lines: list[str], start: int) -> int:
    """Index after the last line of the block whose key is on ``lines[start]``."""
    col = _indent(lines[start])
    end = start + 1
    while end < len(lines) and (not _content(lines[end]) or _indent(lines[end]) > col):
        end += 1
    while end > start + 1 and not _content(lines[end - 1]):
        end -= 1  # trailing blank lines and comments belong to what follows
    return end


def _key_line(lines: list[str], index: int, key: str) -> re.Match[str]:
    match = _key_re(key).match(lines[index])
    if match is None:
        raise _NoLineEditError(f"{key!r} is not a block key on its line")
    return match


def _comment(line: str) -> str:
    match = re.search(r"\s+#.*$", line.rstrip("\n"))
    return match.group(0) if match else ""


def _remove(lines: list[str], index: int, key: str) -> None:
    match = _key_line(lines, index, key)
    if "-" in match.group(1):
        raise _NoLineEditError(f"{key!r} starts a list entry")
    del lines[index : _block_end(lines, index)]
    # A parent left without children would read as null: give it an empty mapping.
    parent = index - 1
    while parent >= 0 and (not _content(lines[parent]) or _indent(lines[parent]) >= match.end(1)):
        parent -= 1
    if parent >= 0 and _block_end(lines, parent) == parent + 1:
        text = lines[parent].rstrip("\n")
        comment = _comment(text)
        body = text[: len(text) - len(comment)] if comment else text
        if body.rstrip().endswith(":"):
            lines[parent] = f"{body.rstrip()} {{}}{comment}\n"


def _apply(text: str, doc: loader.Document, edits: list[compat.Edit]) -> str:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    for edit in sorted(edits, key=lambda e: doc.lines.get(e.literal, 0), reverse=True):
        index = doc.lines[edit.literal] - 1
        key = str(edit.literal[-1])
        if edit.action == "rekey":
            match = _key_line(lines, index, key)
            start, end = match.start(2), match.start(3)
            lines[index] = lines[index][:start] + edit.new_key + lines[index][end:]
        elif edit.action == "drop":
            _remove(lines, index, key)
        elif edit.action == "move":
            anchor_path = edit.literal[: len(edit.root) + 1]
            anchor = doc.lines[anchor_path] - 1
            comment = _comment(lines[index])
            _remove(lines, index, key)
            end = _block_end(lines, anchor)
            col = _indent(lines[anchor])
            value = json.dumps(edit.value, ensure_ascii=False)
            lines.insert(end, f"{' ' * col}{edit.new_key}: {value}{comment}\n")
        else:
            raise _NoLineEditError("a runners: block inside an experiment moves to the study")
    return "".join(lines)


def _fingerprint(plan: StudyPlan) -> Any:
    return (
        [(p.id, p.config_hash, p.error) for p in plan.points],
        plan.execution.model_dump(),
        plan.runners.model_dump(),
        plan.gate.model_dump(),
    )


def _same_plan(path: Path, text: str, expected: StudyPlan) -> bool:
    with tempfile.NamedTemporaryFile(
        "w", suffix=path.suffix, dir=path.parent, prefix=".llem-migrate-", delete=False
    ) as handle:
        handle.write(text)
    candidate = Path(handle.name)
    try:
        plan = study.load(candidate, BUILTIN)
    except LlemError:
        return False
    finally:
        candidate.unlink(missing_ok=True)
    renamed = any("LLenergyMeasure names accepted" in note for note in plan.notes)
    return not renamed and _fingerprint(plan) == _fingerprint(expected)


def migrate_text(path: Path) -> tuple[str, str]:
    """The migrated text of a study file and how it was made ("" when already current).

    Raises:
        StudyError: the file has problems migration cannot fix (listed with their fixes).
    """
    text = path.read_text(encoding="utf-8")
    expected = study.load(path, BUILTIN)
    doc = loader.parse_text(text, path)
    upgraded = compat.upgrade(doc, BUILTIN)
    if not upgraded.edits:
        return text, ""
    if upgraded.problems:
        raise StudyError(path, upgraded.problems)
    try:
        new = _apply(text, loader.parse_text(text, path), upgraded.edits)
        if _same_plan(path, new, expected):
            return new, "comments kept"
    except _NoLineEditError:
        pass
    dumped = yaml.safe_dump(doc.data, sort_keys=False, allow_unicode=True)
    if _same_plan(path, dumped, expected):
        return dumped, "rewritten by PyYAML: comments were not kept"
    raise StudyError.single(
        path, "", "migration would change the experiments", "rename the keys by hand"
    )


DESCRIPTION = """\
Rewrite study files written for LLenergyMeasure to the key names pytest-llem
uses now, in place. The edits are those collection makes (with a note) when
it loads such a file, made line by line so that comments and layout stay.
Where a line edit cannot express a change (flow mappings, a runners: block
inside an experiment) the file is re-written by PyYAML and its comments are
lost (the output says so). Either way the result is loaded again and must give
the same points and config hashes, or the file is left as it was.

Exit status: 0 when every file is current or was migrated; 1 (with --check)
when a file would change; 2 when a file cannot be loaded or migrated.

examples:
  python -m pytest_llem migrate benchmarks/*.yaml          # in place
  python -m pytest_llem migrate --check benchmarks/*.yaml  # CI: 1 if outdated
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``migrate`` on ``parser``."""
    parser.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="STUDY",
        help="study YAML files to migrate (each rewritten in place unless --check)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; say which files would change and exit 1 if any would",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pytest_llem migrate`` on its own (``run`` does the work)."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_llem migrate",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Migrate the files (or, with ``--check``, only say which would change): 0, 1 or 2."""
    status = 0
    for path in args.files:
        try:
            new, how = migrate_text(path)
        except LlemError as exc:
            print(f"{path}: {exc}", file=sys.stderr)
            status = 2
            continue
        if not how:
            print(f"{path}: up to date")
        elif args.check:
            print(f"{path}: would be migrated ({how})")
            status = max(status, 1)
        else:
            path.write_text(new, encoding="utf-8")
            print(f"{path}: migrated ({how})")
    return status
