"""Structural checks of a study document: keys, ``base:`` files, sweep dimensions, backends.

Every problem is collected (not raised) so the user sees all of them at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from pytest_llem.errors import Problem, StudyError
from pytest_llem.study import compat, loader
from pytest_llem.study.backends import BackendRegistry
from pytest_llem.study.experiment import ExperimentConfig, experiment_model
from pytest_llem.study.fates import table
from pytest_llem.study.grammar import (
    check_path,
    deep_merge,
    expand_dotted,
    moved_hint,
    scoped_backend,
    split_key,
    suggest,
    unknown_keys,
)

STUDY_KEYS: tuple[str, ...] = (
    "name",
    "description",
    "base",
    "sweep",
    "experiments",
    "execution",
    "runners",
    "gate",
    "ab",
)

Dim = tuple[tuple[str, ...], list[Any], int | None]


def fix_for(errors: list[Any]) -> str:
    """A fix for the first of pydantic's ``exc.errors()`` (the message names the field)."""
    if not errors:
        return "correct the value"
    err = errors[0]
    loc = ".".join(str(x) for x in err["loc"]) or "the config"
    kind = str(err["type"])
    if kind == "missing":
        where = "at the top level, in the sweep, or in each experiment"
        return f"set {loc} ({where})" if "." not in loc else f"set {loc}"
    if kind == "extra_forbidden":
        return f"remove {loc} or check its spelling"
    if kind in ("literal_error", "enum"):
        return f"use one of the allowed values for {loc}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"give {loc} a value in the allowed range"
    if kind == "value_error":
        return "change the settings the message names"
    return f"give {loc} a value of the right type"


class Expander:
    """Collects problems while walking one study document."""

    def __init__(
        self,
        doc: loader.Document,
        root: Path | None,
        max_points: int,
        backends: BackendRegistry,
    ) -> None:
        self.doc = doc
        self.backends = backends
        self.model: type[ExperimentConfig] = experiment_model(backends)
        self.root = root.resolve() if root is not None else None
        self.max_points = max_points
        self.problems: list[Problem] = []
        self.notes: list[str] = []

    def problem(
        self,
        keypath: tuple[str | int, ...],
        message: str,
        fix: str | None,
        field: str | None = None,
    ) -> None:
        name = field if field is not None else ".".join(str(k) for k in keypath)
        self.problems.append(Problem(name, message, fix, self.doc.line_of(keypath)))

    def fail_if_problems(self) -> None:
        if self.problems:
            raise StudyError(self.doc.path, self.problems)

    # -- structure -----------------------------------------------------------------------

    def check_top_level(self, data: Mapping[str, Any]) -> None:
        config_fields = sorted(self.model.model_fields)
        for key, value in data.items():
            if key in STUDY_KEYS:
                continue
            head = split_key(key)[0]
            if head not in self.model.model_fields:
                hint = suggest(head, [*STUDY_KEYS, *config_fields])
                fix = f"did you mean {hint!r}?" if hint else "remove it or check the spelling"
                fix = moved_hint(head, table(self.backends)) or fix
                self.problem((key,), f"unknown key {head!r}", fix)
            elif key != "backend":
                self.check_block({key: value}, ())

    def check_block(self, block: Mapping[str, Any], where: tuple[str | int, ...]) -> None:
        for key, value in block.items():
            head = len(split_key(key))
            for path, message, fix in unknown_keys(self.model, {key: value}):
                keypath = (*where, key, *path[head:])
                field = ".".join(str(k) for k in (*where, *path))
                self.problem(keypath, message, fix, field)

    def check_section(
        self,
        data: Mapping[str, Any],
        key: str,
        model: type[BaseModel],
        allowed: Collection[str] | None = None,
    ) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(
                (key,),
                f"must be a mapping, got {type(value).__name__}",
                f"write {key}: as a block of keys (see the README)",
            )
            return {}
        names = sorted(model.model_fields if allowed is None else allowed)
        for name in value:
            if name not in names:
                hint = suggest(name, names)
                fix = f"did you mean {hint!r}?" if hint else f"allowed: {names}"
                self.problem((key, name), f"unknown key {name!r}", fix)
        return dict(value)

    def validate_section(self, raw: dict[str, Any], key: str, model: type[BaseModel]) -> Any:
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
                    continue  # already reported with a suggestion by check_section
                loc = tuple(str(x) for x in err["loc"])
                msg = str(err["msg"]).removeprefix("Value error, ")
                self.problem((key, *loc), msg, fix_for([err]))
            return model()

    def check_ab(self, data: Mapping[str, Any]) -> Any:
        """The ``ab:`` section: its keys, each arm's runner and env, and every override a
        path into the config (as a sweep key is)."""
        from pytest_llem.study.sections import AB_ARMS, AbConfig

        raw = self.check_section(data, "ab", AbConfig)
        if not raw:
            return None
        for arm in AB_ARMS:
            block = raw.get(arm)
            if block is None:
                self.problem(("ab",), f"the {arm} arm is missing", f"add ab: {{{arm}: {{...}}}}")
                continue
            if not isinstance(block, Mapping):
                self.problem(("ab", arm), "must be a mapping of overrides", f"write {arm}: {{}}")
                continue
            for key in block:
                if key in ("runner", "env"):
                    continue
                _, path = scoped_backend(str(key), self.backends.names)
                bad = check_path(self.model, path)
                if bad is not None:
                    self.problem(("ab", arm, key), bad[1], bad[2])
        if self.problems:
            return None
        return self.validate_section(raw, "ab", AbConfig)

    # -- base ----------------------------------------------------------------------------

    def load_base(self, ref: Any, origin: Path, seen: frozenset[Path]) -> dict[str, Any]:
        if not isinstance(ref, str) or not ref.strip():
            self.problem(
                ("base",),
                "must be a path to an experiment YAML file",
                "write base: path/to/experiment.yaml (relative to this file)",
            )
            return {}
        target = (origin.parent / ref).resolve()
        if self.root is not None and not target.is_relative_to(self.root):
            self.problem(
                ("base",),
                f"{ref!r} resolves to {target}, outside the rootdir {self.root}",
                "keep base files inside the project",
            )
            return {}
        if target in seen:
            self.problem(("base",), f"{ref!r} forms a cycle of base files", "break the cycle")
            return {}
        if not target.is_file():
            self.problem(
                ("base",),
                f"{ref!r} ({target}) does not exist",
                "fix the path (relative paths are relative to the file that names them)",
            )
            return {}
        base_doc = loader.read(target)
        if not isinstance(base_doc.data, Mapping):
            raise StudyError.single(
                target,
                "",
                "a base file must be a mapping of config fields",
                "write experiment fields (model: ..., precision: ...) at the top level",
            )
        upgraded = compat.upgrade_base(base_doc, self.backends)
        if upgraded.problems:
            raise StudyError(target, upgraded.problems)
        self.notes.extend(upgraded.summary(target.name))
        data = dict(base_doc.data)
        nested = data.pop("base", None)
        problems = [
            Problem(".".join(path), msg, fix, base_doc.line_of(path))
            for path, msg, fix in unknown_keys(self.model, data)
        ]
        if problems:
            raise StudyError(target, problems)
        parent = self.load_base(nested, target, seen | {target}) if nested is not None else {}
        return deep_merge(parent, expand_dotted(data))

    # -- sweep ---------------------------------------------------------------------------

    def parse_sweep(self, sweep: Any) -> tuple[list[Dim], dict[str, list[Dim]], list[str] | None]:
        universal: list[Dim] = []
        scoped: dict[str, list[Dim]] = {}
        backend_dim: list[str] | None = None
        if sweep is None:
            return universal, scoped, None
        if not isinstance(sweep, Mapping):
            self.problem(
                ("sweep",),
                "must be a mapping of dotted keys to lists",
                "write sweep: {precision: [fp16, bf16], pytorch.batch_size: [1, 8]}",
            )
            return universal, scoped, None
        for key, values in sweep.items():
            keypath = ("sweep", key)
            if not isinstance(values, list) or not values:
                self.problem(
                    keypath,
                    "sweep values must be a non-empty list",
                    f"write `{key}: [a, b]`, or set a single value as a top-level field",
                )
                continue
            backend, path = scoped_backend(key, self.backends.names)
            if path == ("backend",):
                backend_dim = [str(v) for v in values]
                continue
            if path[0] in self.backends and len(path) == 1:
                self.problem(
                    keypath, "a backend name alone is not a dimension", f"use {key}.<field>"
                )
                continue
            bad = check_path(self.model, path)
            if bad is not None:
                self.problem(keypath, bad[1], bad[2])
                continue
            dim: Dim = (path, list(values), self.doc.line_of(keypath))
            if backend is None:
                universal.append(dim)
            else:
                scoped.setdefault(backend, []).append(dim)
        return universal, scoped, backend_dim

    # -- backends ------------------------------------------------------------------------

    def resolve_backends(
        self,
        fixed_backend: Any,
        backend_dim: list[str] | None,
        scoped: dict[str, list[Dim]],
        sections: set[str],
    ) -> list[str]:
        explicit: list[str] | None = None
        if fixed_backend is not None and backend_dim is not None:
            self.problem(("sweep", "backend"), "backend is both fixed and swept", "keep one")
        if backend_dim is not None:
            explicit = backend_dim
        elif isinstance(fixed_backend, list):
            explicit = [str(b) for b in fixed_backend]
        elif fixed_backend is not None:
            explicit = [str(fixed_backend)]
        if explicit is not None:
            for name in explicit:
                if name not in self.backends:
                    names = list(self.backends.names)
                    hint = suggest(name, names)
                    fix = f"did you mean {hint!r}?" if hint else f"use one of {names}"
                    self.problem(("backend",), f"unknown backend {name!r}", fix)
            for name, dims in scoped.items():
                if name not in explicit:
                    for path, _, _ in dims:
                        key = ".".join(path)
                        self.problem(
                            ("sweep", key),
                            f"scoped to backend {name!r}, which is not in backend: {explicit}",
                            f"add {name} to backend:, or remove the key",
                        )
            return list(dict.fromkeys(b for b in explicit if b in self.backends))
        inferred = [b for b in self.backends.names if b in scoped or b in sections]
        return inferred or [self.backends.default]
