"""Read a YAML file into plain data, remembering the line of every key.

Safe by construction: only YAML's standard tags are built (``!!python/*`` is rejected),
duplicate keys are errors rather than silently overwritten, and alias expansion is bounded so
that an alias bomb ("billion laughs") fails fast instead of eating the machine's memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pytest_llem.errors import Problem, StudyError

KeyPath = tuple[str | int, ...]

MAX_FILE_BYTES = 2_000_000
MAX_NODES = 1_000_000
MAX_DEPTH = 64


@dataclass
class Document:
    """A parsed YAML document with the 1-based line of each key path."""

    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, keypath: KeyPath) -> int | None:
        """Line of ``keypath``, or of its nearest ancestor that has one."""
        for end in range(len(keypath), -1, -1):
            line = self.lines.get(keypath[:end])
            if line is not None:
                return line
        return None


class _Builder:
    """Turns a composed node graph into Python data, with a budget on visited nodes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: dict[KeyPath, int] = {}
        self.visited = 0
        self._constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, keypath: KeyPath) -> Any:
        self.visited += 1
        if self.visited > MAX_NODES:
            raise StudyError.single(
                self.path,
                "",
                f"the YAML expands to more than {MAX_NODES:,} nodes (an alias bomb?)",
                "remove the recursive anchors/aliases; write the values out",
                node.start_mark.line + 1,
            )
        if len(keypath) > MAX_DEPTH:
            raise StudyError.single(
                self.path,
                _dotted(keypath[:3]) + "...",
                f"nested deeper than {MAX_DEPTH} levels (a recursive alias?)",
                "flatten the structure; recursive anchors are not supported",
                node.start_mark.line + 1,
            )
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, keypath)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                self._bad_tag(node)
            items = []
            for i, child in enumerate(node.value):
                child_path = (*keypath, i)
                self.lines[child_path] = child.start_mark.line + 1
                items.append(self.build(child, child_path))
            return items
        assert isinstance(node, yaml.ScalarNode)
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            raise StudyError.single(
                self.path,
                _dotted(keypath),
                f"cannot read this value: {exc.problem}",
                "use plain YAML scalars (strings, numbers, booleans, null)",
                node.start_mark.line + 1,
            ) from None

    def _mapping(self, node: yaml.MappingNode, keypath: KeyPath) -> dict[str, Any]:
        if node.tag != "tag:yaml.org,2002:map":
            self._bad_tag(node)
        own = sum(1 for k, _ in node.value if k.tag != "tag:yaml.org,2002:merge")
        self._constructor.flatten_mapping(node)  # resolves YAML merge keys (<<) first
        merged = len(node.value) - own  # merged pairs come first and may be overridden
        out: dict[str, Any] = {}
        inherited: set[str] = set()
        for index, (key_node, value_node) in enumerate(node.value):
            key = self.build(key_node, keypath)
            if not isinstance(key, str):
                raise StudyError.single(
                    self.path,
                    _dotted(keypath),
                    f"key {key!r} is not a string",
                    "quote the key",
                    key_node.start_mark.line + 1,
                )
            if index < merged:
                inherited.add(key)
            elif key in inherited:
                inherited.discard(key)  # an explicit key overrides a merged one, once
            elif key in out:
                raise StudyError.single(
                    self.path,
                    _dotted((*keypath, key)),
                    "duplicate key (YAML would silently keep only the last one)",
                    "remove one of the two entries",
                    key_node.start_mark.line + 1,
                )
            child = (*keypath, key)
            self.lines[child] = key_node.start_mark.line + 1
            out[key] = self.build(value_node, child)
        return out

    def _bad_tag(self, node: yaml.Node) -> None:
        raise StudyError.single(
            self.path,
            "",
            f"unsupported YAML tag {node.tag!r}",
            "remove the tag; study files hold plain data only",
            node.start_mark.line + 1,
        )


def _dotted(keypath: KeyPath) -> str:
    return ".".join(str(k) for k in keypath)


def parse_text(text: str, path: Path) -> Document:
    """Parse YAML text; every failure is a StudyError naming the file and line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        hint = "YAML indentation must use spaces, not tabs" if "\t" in text else None
        raise StudyError.single(
            path, "", f"invalid YAML: {exc.problem or exc}", hint or "fix the YAML syntax", line
        ) from None
    except yaml.YAMLError as exc:
        raise StudyError.single(path, "", f"invalid YAML: {exc}", "fix the YAML syntax") from None
    builder = _Builder(path)
    data = builder.build(node, ()) if node is not None else None
    return Document(path=path, data=data, lines=builder.lines)


def read(path: Path) -> Document:
    """Read and parse a YAML file (size-bounded, UTF-8)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise StudyError(
                path,
                [Problem("", f"file is {size:,} bytes, over {MAX_FILE_BYTES:,}", "split it")],
            )
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise StudyError.single(
            path, "", f"not UTF-8 text: {exc.reason}", "save as UTF-8"
        ) from None
    except OSError as exc:
        raise StudyError.single(
            path, "", f"cannot read: {exc.strerror}", "check the path"
        ) from None
    return parse_text(text, path)
