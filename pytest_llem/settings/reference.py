"""The options reference of the manual, rendered from what pytest registers.

``markdown()`` runs ``resolve.add_options`` against a recorder instead of pytest's parser, so
the reference lists exactly the flags and ini keys pytest gets, including the line-list ini
keys that ``resolve.py`` registers beside the option table. The table pairs each flag with its
ini key. The manual's build (``docs/hooks/options.py``) writes the result into
``docs/options.md``; nothing here is copied by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_llem.settings import resolve
from pytest_llem.settings.table import OPTIONS

HEADER = "| option | ini key | ini value | meaning |\n|---|---|---|---|"
# How each pytest ini type is written in the ini file.
INI_VALUES = {"string": "value", "bool": "true/false", "linelist": "one per line"}


@dataclass(frozen=True)
class Row:
    """One line of the reference: a flag, an ini key, or both."""

    flag: str | None
    metavar: str | None
    ini: str | None
    ini_type: str | None  # pytest's ini type: string, bool or linelist
    help: str


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


def rows() -> list[Row]:
    """Every registered flag and ini key, in registration order; a flag's ini key on its row."""
    recorder = _Recorder()
    resolve.add_options(recorder)  # type: ignore[arg-type]  # a duck-typed pytest.Parser
    ini_of = {opt.cli: opt.ini for opt in OPTIONS if opt.has_cli}
    ini_types = {name: attrs["type"] for kind, name, attrs in recorder.calls if kind == "ini"}
    out: list[Row] = []
    paired: set[str] = set()
    for kind, name, attrs in recorder.calls:
        if kind == "option":
            ini = ini_of.get(name)
            out.append(
                Row(
                    flag=name,
                    metavar=attrs.get("metavar"),
                    ini=ini,
                    ini_type=ini_types.get(ini) if ini else None,
                    # argparse needs "%%" for a literal "%"; the manual does not.
                    help=str(attrs.get("help", "")).replace("%%", "%"),
                )
            )
            if ini:
                paired.add(ini)
        elif name not in paired:
            out.append(Row(None, None, name, attrs["type"], str(attrs["help"])))
    return out


def _escape(text: str) -> str:
    """Help text as literal markdown in a table cell (``<rootdir>`` is not an HTML tag)."""
    for char in "\\`*_[]|":
        text = text.replace(char, "\\" + char)
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _code(text: str) -> str:
    # Python-Markdown's tables keep a pipe inside a code span in its cell (`fail|warn`), and
    # would show a backslash there literally.
    return f"`{text}`"


def markdown() -> str:
    """The reference as a markdown table: flag (empty for ini-only keys), ini key, the ini
    value's form, meaning."""
    lines = [HEADER]
    for row in rows():
        flag = ""
        if row.flag:
            flag = _code(f"{row.flag} {row.metavar}" if row.metavar else row.flag)
        ini = _code(row.ini) if row.ini else ""
        value = INI_VALUES.get(row.ini_type, row.ini_type) if row.ini_type else ""
        lines.append(f"| {flag} | {ini} | {value} | {_escape(row.help)} |")
    return "\n".join(lines) + "\n"
