"""Study file -> StudyPlan: ``base:`` merge, sweep expansion, explicit experiments, validation.

Pure: imports neither pytest, torch nor docker. Every structural problem of a file is
collected and raised together in one StudyError; per-point validation errors do not stop the
study (those points become skipped items).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from pytest_llem.errors import Problem, StudyError
from pytest_llem.study import loader
from pytest_llem.study.backends import BACKENDS
from pytest_llem.study.grammar import (
    check_path,
    deep_merge,
    expand_dotted,
    flatten,
    scoped_backend,
    set_path,
    split_key,
    suggest,
    unknown_keys,
)
from pytest_llem.study.identity import id_part, short_hash, unique_ids
from pytest_llem.study.model import ExperimentConfig
from pytest_llem.study.plan import Point, StudyPlan
from pytest_llem.study.spec import ExecutionConfig, GateConfig, RunnersConfig

STUDY_KEYS: tuple[str, ...] = (
    "name",
    "description",
    "base",
    "sweep",
    "experiments",
    "execution",
    "runners",
    "gate",
)
DEFAULT_MAX_POINTS = 10_000

Dim = tuple[tuple[str, ...], list[Any], int | None]


def format_validation_error(exc: ValidationError) -> str:
    """One line per pydantic error: ``field.path: message``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


class _Expander:
    """Collects problems while walking one study document."""

    def __init__(self, doc: loader.Document, root: Path | None, max_points: int) -> None:
        self.doc = doc
        self.root = root.resolve() if root is not None else None
        self.max_points = max_points
        self.problems: list[Problem] = []

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
        config_fields = sorted(ExperimentConfig.model_fields)
        for key, value in data.items():
            if key in STUDY_KEYS:
                continue
            head = split_key(key)[0]
            if head not in ExperimentConfig.model_fields:
                hint = suggest(head, [*STUDY_KEYS, *config_fields])
                fix = f"did you mean {hint!r}?" if hint else "remove it or check the spelling"
                self.problem((key,), f"unknown key {head!r}", fix)
            elif key != "backend":
                self.check_block({key: value}, ())

    def check_block(self, block: Mapping[str, Any], where: tuple[str | int, ...]) -> None:
        for key, value in block.items():
            head = len(split_key(key))
            for path, message in unknown_keys(ExperimentConfig, {key: value}):
                keypath = (*where, key, *path[head:])
                field = ".".join(str(k) for k in (*where, *path))
                self.problem(keypath, message, "fix or remove the key", field)

    def check_section(
        self, data: Mapping[str, Any], key: str, model: type[BaseModel]
    ) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem((key,), f"must be a mapping, got {type(value).__name__}", None)
            return {}
        for name in value:
            if name not in model.model_fields:
                hint = suggest(name, sorted(model.model_fields))
                fix = (
                    f"did you mean {hint!r}?" if hint else f"allowed: {sorted(model.model_fields)}"
                )
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
                self.problem((key, *loc), msg, None)
            return model()

    # -- base ----------------------------------------------------------------------------

    def load_base(self, ref: Any, origin: Path, seen: frozenset[Path]) -> dict[str, Any]:
        if not isinstance(ref, str) or not ref.strip():
            self.problem(("base",), "must be a path to an experiment YAML file", None)
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
            raise StudyError.single(target, "", "a base file must be a mapping of config fields")
        data = dict(base_doc.data)
        nested = data.pop("base", None)
        problems = [
            Problem(".".join(path), msg, "fix or remove the key", base_doc.line_of(path))
            for path, msg in unknown_keys(ExperimentConfig, data)
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
            self.problem(("sweep",), "must be a mapping of dotted keys to lists", None)
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
            backend, path = scoped_backend(key)
            if path == ("backend",):
                backend_dim = [str(v) for v in values]
                continue
            if path[0] in BACKENDS and len(path) == 1:
                self.problem(
                    keypath, "a backend name alone is not a dimension", f"use {key}.<field>"
                )
                continue
            bad = check_path(ExperimentConfig, path)
            if bad is not None:
                self.problem(keypath, bad[1], "check the spelling of the dotted key")
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
                if name not in BACKENDS:
                    hint = suggest(name, list(BACKENDS))
                    fix = f"did you mean {hint!r}?" if hint else f"use one of {list(BACKENDS)}"
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
            return list(dict.fromkeys(b for b in explicit if b in BACKENDS))
        inferred = [b for b in BACKENDS if b in scoped or b in sections]
        return inferred or ["pytorch"]


def _grid_size(universal: list[Dim], scoped: dict[str, list[Dim]], backends: list[str]) -> int:
    return sum(
        math.prod(len(values) for _, values, _ in [*universal, *scoped.get(b, [])])
        for b in backends
    )


def _get(raw: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = raw
    for seg in path:
        if not isinstance(node, Mapping) or seg not in node:
            return _MISSING
        node = node[seg]
    return node


_MISSING = object()


def build(doc: loader.Document, root: Path | None, max_points: int) -> StudyPlan:
    """Expand a parsed study document into a plan (raises StudyError on structural problems)."""
    ex = _Expander(doc, root, max_points)
    data = doc.data
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else type(data).__name__
        raise StudyError.single(
            doc.path,
            "",
            f"a study file must be a mapping of keys, got {kind}",
            "start from the example in the README: `model: ...`, `sweep: {...}`",
        )
    ex.check_top_level(data)
    fixed_raw = {k: v for k, v in data.items() if k not in STUDY_KEYS and k != "backend"}
    fixed = expand_dotted(fixed_raw)
    if "base" in data:
        fixed = deep_merge(
            ex.load_base(data["base"], doc.path, frozenset({doc.path.resolve()})), fixed
        )
    base_backend = fixed.pop("backend", None)
    fixed_backend = data.get("backend")

    universal, scoped, backend_dim = ex.parse_sweep(data.get("sweep"))
    experiments = _parse_experiments(ex, data.get("experiments"))
    sections = {s for s in BACKENDS if s in fixed} | {
        s for entry, _ in experiments for s in BACKENDS if s in entry
    }
    if fixed_backend is None and backend_dim is None:
        fixed_backend = base_backend  # a base file's backend is a default the study may sweep
    backends = ex.resolve_backends(fixed_backend, backend_dim, scoped, sections)

    execution = ex.validate_section(
        ex.check_section(data, "execution", ExecutionConfig), "execution", ExecutionConfig
    )
    runners = ex.validate_section(
        ex.check_section(data, "runners", RunnersConfig), "runners", RunnersConfig
    )
    gate = ex.validate_section(ex.check_section(data, "gate", GateConfig), "gate", GateConfig)

    has_dims = bool(universal) or any(scoped.get(b) for b in backends)
    size = (_grid_size(universal, scoped, backends) if has_dims else 0) + len(experiments) * len(
        backends
    )
    if size > max_points:
        ex.problem(
            ("sweep",),
            f"the grid has {size:,} points, over the limit of {max_points:,}",
            "shrink the sweep, or raise the limit with --llem-max-items",
        )
    ex.fail_if_problems()

    raws: list[tuple[dict[str, Any], int | None, str]] = []
    if has_dims or not experiments:
        sweep_line = doc.line_of(("sweep",)) if has_dims else None
        for backend in backends:
            dims = [*universal, *scoped.get(backend, [])]
            for combo in itertools.product(*[values for _, values, _ in dims]):
                raw = dict(fixed)
                raw["backend"] = backend
                for (path, _, _), value in zip(dims, combo, strict=True):
                    set_path(raw, path, value)
                raws.append((raw, sweep_line, "sweep" if has_dims else "study"))
    for index, (entry, line) in enumerate(experiments):
        for backend in _entry_backends(entry, backends):
            raw = deep_merge(fixed, entry)
            raw["backend"] = backend
            raws.append((raw, line, f"experiments[{index}]"))

    # Id parts follow the order the dimensions are written in the file.
    dims_all = [*universal, *(d for dims in scoped.values() for d in dims)]
    candidates = [path for path, _, line in sorted(dims_all, key=lambda d: d[2] or 0)]
    candidates += [path for entry, _ in experiments for path, _ in flatten(entry)]
    return _finish(doc, data, raws, candidates, execution, runners, gate)


def _parse_experiments(ex: _Expander, value: Any) -> list[tuple[dict[str, Any], int | None]]:
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        ex.problem(("experiments",), "must be a non-empty list of mappings", None)
        return []
    out = []
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            ex.problem(("experiments", index), "each experiment must be a mapping", None)
            continue
        ex.check_block(entry, ("experiments", index))
        nested = expand_dotted(entry)
        if isinstance(nested.get("backend"), list):
            ex.problem(("experiments", index, "backend"), "must be one backend", None)
            continue
        out.append((nested, ex.doc.line_of(("experiments", index))))
    return out


def _entry_backends(entry: Mapping[str, Any], backends: list[str]) -> list[str]:
    if isinstance(entry.get("backend"), str):
        return [entry["backend"]]
    named = [b for b in BACKENDS if b in entry]
    return named[:1] if named else backends


def _finish(
    doc: loader.Document,
    data: Mapping[str, Any],
    raws: list[tuple[dict[str, Any], int | None, str]],
    candidates: list[tuple[str, ...]],
    execution: ExecutionConfig,
    runners: RunnersConfig,
    gate: GateConfig,
) -> StudyPlan:
    validated: list[
        tuple[dict[str, Any], ExperimentConfig | None, str | None, str, int | None, str]
    ] = []
    seen_full: dict[str, int] = {}
    warnings: list[str] = []
    for raw, line, origin in raws:
        try:
            config: ExperimentConfig | None = ExperimentConfig.model_validate(raw)
            error = None
        except ValidationError as exc:
            config, error = None, format_validation_error(exc)
        digest = short_hash(config.workload()) if config is not None else short_hash(raw)
        # Exact duplicates (protocol fields included); same file, so field order is stable.
        full = config.model_dump_json() if config is not None else digest
        if full in seen_full:
            warnings.append(f"{origin} repeats an earlier point exactly; it runs once")
            continue
        seen_full[full] = len(validated)
        validated.append((raw, config, error, digest, line, origin))

    varying = _varying_paths(candidates, [v[0] for v in validated])
    base_ids = [
        "-".join(
            [str(raw.get("backend"))]
            + [id_part(p, _get(raw, p)) for p in varying if _get(raw, p) is not _MISSING]
        )
        for raw, *_ in validated
    ]
    ids = unique_ids(base_ids, [v[3] for v in validated])
    points = tuple(
        Point(id=i, config_hash=d, raw=r, config=c, error=e, line=ln, origin=o)
        for i, (r, c, e, d, ln, o) in zip(ids, validated, strict=True)
    )
    invalid = sum(1 for p in points if not p.valid)
    if points and invalid == len(points):
        raise StudyError(
            doc.path,
            [Problem(p.id, p.error or "invalid", None, p.line) for p in points[:20]],
        )
    if invalid * 2 > len(points):
        warnings.append(f"{invalid} of {len(points)} grid points are invalid and will be skipped")
    name = data.get("name") or doc.path.stem.removeprefix("study_")
    study_hash = short_hash(
        {
            "points": [[p.id, p.config_hash] for p in points],
            "execution": execution.model_dump(mode="json", exclude={"shuffle_seed"}),
        }
    )
    return StudyPlan(
        path=doc.path,
        name=str(name),
        study_hash=study_hash,
        points=points,
        execution=execution,
        runners=runners,
        gate=gate,
        warnings=tuple(warnings),
    )


def _varying_paths(
    candidates: list[tuple[str, ...]], raws: list[dict[str, Any]]
) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for path in dict.fromkeys(candidates):
        if path == ("backend",):
            continue
        values = {repr(_get(raw, path)) for raw in raws}
        if len(values) > 1:
            out.append(path)
    return out


def load(
    path: Path | str, root: Path | str | None = None, max_points: int = DEFAULT_MAX_POINTS
) -> StudyPlan:
    """Load a study file into a StudyPlan.

    Args:
        path: the study YAML file.
        root: ``base:`` files must resolve inside this directory (the pytest rootdir).
        max_points: refuse grids larger than this (the computed size is in the error).

    Raises:
        StudyError: every structural problem of the file, together.
    """
    file = Path(path)
    return build(loader.read(file), Path(root) if root is not None else None, max_points)
