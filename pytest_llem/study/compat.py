"""LLenergyMeasure study files, accepted as written: the fate table applied to a document.

Renamed keys move to their new place (one note per file names them all), dropped keys whose
value matches this project's behaviour are removed with a note, any other dropped key is a
problem that says why. The same rewrite serves collection and ``python -m pytest_llem
migrate``, so a migrated file yields the same configs and hashes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pytest_llem.errors import Problem
from pytest_llem.study.fates import Fate, accepts, by_old
from pytest_llem.study.grammar import expand_dotted, set_path, split_key
from pytest_llem.study.loader import Document, KeyPath

# Keys a base file may not hold; LLenergyMeasure stripped them from base files silently.
STUDY_ONLY_KEYS: tuple[str, ...] = (
    "sweep",
    "experiments",
    "execution",
    "name",
    "description",
    "version",
    "runners",
    "gate",
)
MIGRATE_HINT = "python -m pytest_llem migrate"


@dataclass(frozen=True)
class Edit:
    """One change at a key as written in the file (what ``migrate`` does to its text).

    ``rekey``: write ``new_key`` instead of the key; ``drop``: remove the key; ``move``:
    remove it and write the dotted ``new_key: value`` into the block at ``root``; ``hoist``:
    a per-experiment ``runners:`` that moves to the study (the text is re-dumped).
    """

    literal: KeyPath
    action: Literal["rekey", "drop", "move", "hoist"]
    new_key: str = ""
    root: KeyPath = ()
    value: Any = None


@dataclass
class Upgrade:
    """What the rewrite of one document did and found."""

    renamed: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    edits: list[Edit] = field(default_factory=list)

    def summary(self, name: str) -> list[str]:
        """The notes for the user: one for all renamed keys, then the others."""
        out = []
        if self.renamed:
            pairs = ", ".join(f"{old} -> {new}" for old, new in self.renamed.items())
            out.append(
                f"{name}: LLenergyMeasure names accepted ({pairs}); "
                f"`{MIGRATE_HINT} {name}` rewrites them"
            )
        return out + [f"{name}: {note}" for note in self.notes]


@dataclass
class _Hit:
    parent: dict[str, Any]
    key: str
    path: tuple[str, ...]
    literal: KeyPath
    fate: Fate


def _find(
    block: dict[str, Any], literal: KeyPath, prefix: tuple[str, ...], fates: dict[str, Fate]
) -> list[_Hit]:
    hits: list[_Hit] = []
    for key, value in block.items():
        path = (*prefix, *split_key(key))
        fate = fates.get(".".join(path))
        if fate is not None and fate.kind != "same":
            hits.append(_Hit(block, key, path, (*literal, key), fate))
        elif isinstance(value, dict):
            hits.extend(_find(value, (*literal, key), path, fates))
    return hits


_ABSENT = object()


def _show(value: Any) -> str:
    """A value as YAML would write it (null, false, 1.5)."""
    return json.dumps(value, default=str)


def _lookup(block: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = expand_dotted(block)
    for seg in path:
        if not isinstance(node, Mapping) or seg not in node:
            return _ABSENT
        node = node[seg]
    return node


def _edit(hit: _Hit, target: tuple[str, ...], where: KeyPath, value: Any, present: bool) -> Edit:
    """How a rename changes the text: the written key alone, or a move to the block root."""
    if present:  # the new key is already written with the same value
        return Edit(hit.literal, "drop")
    written = split_key(hit.key)
    shared = hit.path[: len(hit.path) - len(written)]
    if target[: len(shared)] == shared and len(target) > len(shared):
        return Edit(hit.literal, "rekey", ".".join(target[len(shared) :]))
    return Edit(hit.literal, "move", ".".join(target), where, value)


class _Rewriter:
    def __init__(self, doc: Document, result: Upgrade, fates: dict[str, Fate]) -> None:
        self.doc = doc
        self.result = result
        self.fates = fates

    def problem(self, literal: KeyPath, name: str, message: str, fix: str) -> None:
        self.result.problems.append(Problem(name, message, fix, self.doc.line_of(literal)))

    def dropped(self, hit: _Hit, value: Any) -> None:
        old, fate = hit.fate.old, hit.fate
        if accepts(fate, value):
            self.result.edits.append(Edit(hit.literal, "drop"))
            if not fate.quiet:
                self.result.notes.append(
                    f"{old}: {_show(value)} accepted and removed ({fate.reason})"
                )
            return
        allowed = [v for v in fate.accept if v is not ...]
        fix = f"remove {old}" + (f" (or set it to {_show(allowed[0])})" if allowed else "")
        self.problem(hit.literal, old, f"LLenergyMeasure's {old} is dropped: {fate.reason}", fix)

    def renamed(self, block: dict[str, Any], where: KeyPath, hit: _Hit, value: Any) -> None:
        old, new = hit.fate.old, str(hit.fate.new)
        target = tuple(new.split("."))
        existing = _lookup(block, target)
        if existing is not _ABSENT and existing != value:
            if hit.fate.conflict == "keep_new":
                self.result.edits.append(Edit(hit.literal, "drop"))
                self.result.notes.append(f"{old}: ignored, {new} is given ({new} is used)")
                return
            self.problem(
                hit.literal,
                old,
                f"{old} (LLenergyMeasure's name for {new}) and {new} are both given",
                f"keep only {new}",
            )
            return
        self.result.edits.append(_edit(hit, target, where, value, existing is not _ABSENT))
        line = self.doc.line_of(hit.literal)
        set_path(block, target, value)
        if line is not None:
            self.doc.lines[where + target] = line
        self.result.renamed[old] = new

    def block(self, block: dict[str, Any], where: KeyPath, skip: tuple[str, ...] = ()) -> None:
        hits = [
            h
            for key in list(block)
            if key not in skip
            for h in _find({key: block[key]}, where, (), self.fates)
        ]
        values = []
        for hit in hits:  # pop every hit first: renames below copy the blocks they touch
            # _find saw a one-key view at the top; pop from the real parent.
            parent = block if len(hit.literal) == len(where) + 1 else hit.parent
            values.append(parent.pop(hit.key))
        for hit, value in zip(hits, values, strict=True):
            if hit.fate.kind == "dropped":
                self.dropped(hit, value)
            else:
                self.renamed(block, where, hit, value)

    def sweep(self, sweep: dict[str, Any]) -> None:
        rebuilt: dict[str, Any] = {}
        for key, values in sweep.items():
            fate = self.fates.get(".".join(split_key(key)))
            literal: KeyPath = ("sweep", key)
            if fate is None or fate.kind == "same":
                rebuilt[key] = values
            elif fate.kind == "renamed":
                new = str(fate.new)
                if new in sweep or new in rebuilt:
                    self.problem(literal, key, f"{key} and {new} are both swept", f"keep {new}")
                    continue
                rebuilt[new] = values
                self.result.edits.append(Edit(literal, "rekey", new))
                line = self.doc.line_of(literal)
                if line is not None:
                    self.doc.lines[("sweep", new)] = line
                self.result.renamed[fate.old] = new
            else:
                items = values if isinstance(values, list) else [values]
                hit = _Hit(sweep, key, tuple(split_key(key)), literal, fate)
                for value in items:
                    self.dropped(hit, value)
        sweep.clear()
        sweep.update(rebuilt)

    def hoist_runners(self, root: dict[str, Any], index: int, entry: dict[str, Any]) -> None:
        runners = entry.pop("runners")
        literal: KeyPath = ("experiments", index, "runners")
        self.result.edits.append(Edit(literal, "hoist"))
        if not isinstance(runners, Mapping):
            self.problem(literal, "runners", "must be a mapping of backend to runner", "fix it")
            return
        study = root.setdefault("runners", {})
        if not isinstance(study, dict):
            return  # reported by the runners: check
        for backend, value in runners.items():
            if study.get(backend, value) != value:
                self.problem(
                    (*literal, backend),
                    f"experiments[{index}].runners.{backend}",
                    f"{value!r} differs from the study's runners.{backend}: {study[backend]!r}",
                    "runners apply to a whole backend; set it once in the study's runners:",
                )
                continue
            study[backend] = value
        self.result.notes.append(
            f"experiments[{index}].runners moved to the study's runners: (a runner is "
            "chosen per backend for the whole study)"
        )


def upgrade(doc: Document, backends: Iterable[Any] = ()) -> Upgrade:
    """Rewrite a study document in place (its data is replaced by an upgraded copy).

    ``backends``: the registered backends, whose specs carry their sections' fates.
    """
    result = Upgrade()
    if not isinstance(doc.data, dict):
        return result
    data: dict[str, Any] = copy.deepcopy(doc.data)
    rewriter = _Rewriter(doc, result, by_old(backends))
    rewriter.block(data, (), skip=("sweep", "experiments"))
    if isinstance(data.get("sweep"), dict):
        rewriter.sweep(data["sweep"])
    experiments = data.get("experiments")
    if isinstance(experiments, list):
        for index, entry in enumerate(experiments):
            if isinstance(entry, dict):
                rewriter.block(entry, ("experiments", index))
                if "runners" in entry:
                    rewriter.hoist_runners(data, index, entry)
    doc.data = data
    return result


def upgrade_base(doc: Document, backends: Iterable[Any] = ()) -> Upgrade:
    """Rewrite a ``base:`` file: study keys are stripped with a note, then renames apply."""
    result = Upgrade()
    if not isinstance(doc.data, dict):
        return result
    data = dict(doc.data)
    found = [key for key in STUDY_ONLY_KEYS if key in data]
    for key in found:
        del data[key]
    shown = [k for k in found if k != "version"]
    if shown:
        result.notes.append(
            f"study keys {shown} in a base file are ignored (a base file holds experiment "
            "fields), as LLenergyMeasure did"
        )
    doc.data = data
    inner = upgrade(doc, backends)
    result.renamed.update(inner.renamed)
    result.notes.extend(inner.notes)
    result.problems.extend(inner.problems)
    return result
