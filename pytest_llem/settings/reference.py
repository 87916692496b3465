"""The options reference of the manual, rendered from what pytest registers.

``markdown()`` runs ``resolve.add_options`` against a recorder instead of pytest's parser, so
the reference lists exactly the flags and ini keys pytest gets, including the line-list ini
keys that ``resolve.py`` registers beside the option table. Each flag shares its row with its
ini key; rows are grouped by topic (``table.GROUPS``), one table per topic, with the form of
the value and its default. The manual's build (``docs/hooks/options.py``) writes the result
into ``docs/options.md``; nothing here is copied by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_llem.settings import converters, resolve
from pytest_llem.settings.table import DEFAULT_PATTERNS, GROUPS, OPTIONS, Option

COLUMNS = ("option", "ini key", "type", "default", "meaning")
HEADER = "| " + " | ".join(COLUMNS) + " |\n" + "|---" * len(COLUMNS) + "|"

# How the manual names each converter's values; an Option's ``type`` overrides it.
CONVERTER_TYPES: dict[Callable[[str], Any], str] = {
    converters.text: "text",
    converters.positive_int: "integer ≥ 1",
    converters.non_negative_int: "integer ≥ 0",
    converters.number: "number",
    converters.positive_number: "number > 0",
    converters.boolean: "boolean",
    converters.percentage: "percentage",
    converters.energy: " | ".join(converters.ENERGY_CHOICES),
    converters.inconclusive: "fail | warn",
    converters.strategy: "ephemeral | persistent",
    converters.junit_mode: " | ".join(converters.JUNIT_MODES),
    converters.shard: "K/N",
    converters.fail_on: "limits",
    converters.exports: "KIND=PATH list",
    converters.runner_cli: "runner, or backend=runner list",
    converters.ab_runners: "arm=runner pairs",
    converters.runner_ini: "runner",
}


@dataclass(frozen=True)
class IniList:
    """A line-list ini key that ``resolve.add_options`` registers beside the option table: its
    topic, the form of its lines and its default (markdown: `code` spans)."""

    ini: str
    group: str
    type: str
    default: str


INI_LISTS: tuple[IniList, ...] = (
    IniList(
        "llem_study_patterns",
        "Execution and scale",
        "glob patterns, one per line",
        " ".join(f"`{pattern}`" for pattern in DEFAULT_PATTERNS),
    ),
    IniList("llem_runners", "Runners", "backend = runner, one per line", "none"),
    IniList("llem_docker_volumes", "Containers", "bind mounts, one per line", "none"),
    IniList("llem_docker_env", "Containers", "NAME=VALUE, one per line", "none"),
)

# A help text's "(default ...)" note: the default column says it (a note that goes on after a
# semicolon says more than the default, and stays).
_DEFAULT_NOTE = re.compile(r"\s*\(default\b[^();]*\)")


@dataclass(frozen=True)
class Row:
    """One line of the reference: a flag, an ini key, or both; None where nothing says."""

    flag: str | None
    metavar: str | None
    ini: str | None
    ini_type: str | None  # pytest's ini type: string, bool or linelist
    help: str
    group: str | None = None
    type: str | None = None
    default: str | None = None

    @property
    def name(self) -> str:
        return self.flag or self.ini or "?"


def value_type(opt: Option) -> str:
    """The form of an option's value, as the manual names it."""
    if opt.type:
        return opt.type
    return "boolean" if opt.flag else CONVERTER_TYPES.get(opt.convert, "text")


class _Recorder:
    """Stands in for ``pytest.Parser`` and its option group; keeps every registration in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []  # (kind, name, attributes)

    def getgroup(self, name: str, description: str = "") -> _Recorder:
        return self

    def addoption(self, *names: str, **attrs: Any) -> None:
        self.calls.append(("option", names[0], attrs))

    def addini(self, name: str, help: str, type: str | None = None, default: Any = None) -> None:
        self.calls.append(("ini", name, {"help": help, "type": type or "string"}))


def _facts(opt: Option | IniList | None) -> dict[str, str | None]:
    if isinstance(opt, Option):
        return {"group": opt.group, "type": value_type(opt), "default": opt.default}
    if isinstance(opt, IniList):
        return {"group": opt.group, "type": opt.type, "default": opt.default}
    return {}


def rows() -> list[Row]:
    """Every registered flag and ini key, in registration order; a flag's ini key on its row."""
    recorder = _Recorder()
    resolve.add_options(recorder)  # type: ignore[arg-type]  # a duck-typed pytest.Parser
    by_cli = {opt.cli: opt for opt in OPTIONS if opt.has_cli}
    by_ini: dict[str, Option | IniList] = {opt.ini: opt for opt in OPTIONS if opt.ini}
    by_ini.update({entry.ini: entry for entry in INI_LISTS})
    ini_types = {name: attrs["type"] for kind, name, attrs in recorder.calls if kind == "ini"}
    out: list[Row] = []
    paired: set[str] = set()
    for kind, name, attrs in recorder.calls:
        if kind == "option":
            opt = by_cli.get(name)
            ini = opt.ini if opt else None
            # argparse needs "%%" for a literal "%"; the manual does not.
            text = str(attrs.get("help", "")).replace("%%", "%")
            ini_type = ini_types.get(ini) if ini else None
            out.append(Row(name, attrs.get("metavar"), ini, ini_type, text, **_facts(opt)))
            if ini:
                paired.add(ini)
        elif name not in paired:
            facts = _facts(by_ini.get(name))
            out.append(Row(None, None, name, attrs["type"], str(attrs["help"]), **facts))
    return out


def _escape(text: str) -> str:
    """Text as literal markdown in a table cell (``<rootdir>`` is not an HTML tag)."""
    for char in "\\`*_[]|":
        text = text.replace(char, "\\" + char)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    # Python-Markdown's tables keep a pipe inside a code span in its cell (`fail|warn`), and
    # would show a backslash there literally.
    return f"`{text}`"


def _inline(text: str) -> str:
    """Text whose `backquoted` parts are code spans, the rest literal."""
    parts = text.split("`")
    return "".join(_code(part) if i % 2 else _escape(part) for i, part in enumerate(parts))


def cells(row: Row) -> tuple[str, str, str, str, str]:
    """A row's markdown cells, in ``COLUMNS`` order."""
    flag = ""
    if row.flag:
        # Flag and metavar apart: the cell may wrap between them, never inside a name.
        flag = _code(row.flag) + (" " + _code(row.metavar) if row.metavar else "")
    ini = _code(row.ini) if row.ini else ""
    meaning = _DEFAULT_NOTE.sub("", row.help)
    return flag, ini, _escape(row.type or ""), _inline(row.default or ""), _escape(meaning)


def incomplete(table: list[Row]) -> list[str]:
    """Rows that lack a known group, a type or a default, by flag or ini key."""
    return [
        row.name
        for row in table
        if row.group not in GROUPS or not row.type or not (row.default or "").strip()
    ]


def slug(group: str) -> str:
    """The anchor of a group's heading, as the manual's toc extension makes it."""
    return re.sub(r"[^\w]+", "-", group.lower()).strip("-")


def markdown() -> str:
    """The reference: a line of links to the topics, then a heading and a table per topic.

    Raises:
        ValueError: naming rows without a group, type or default (the manual's build fails).
    """
    table = rows()
    missing = incomplete(table)
    if missing:
        raise ValueError(
            f"the options reference needs a group (one of {GROUPS}), a type and a default for "
            f"{missing}: give them in settings/table.py (ini line lists: reference.INI_LISTS)"
        )
    used = [group for group in GROUPS if any(row.group == group for row in table)]
    lines = [" · ".join(f"[{group}](#{slug(group)})" for group in used)]
    for group in used:
        lines += ["", f"## {group}", "", HEADER]
        lines += ["| " + " | ".join(cells(row)) + " |" for row in table if row.group == group]
    return "\n".join(lines) + "\n"
