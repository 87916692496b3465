"""Study file -> StudyPlan: ``base:`` merge, sweep expansion, explicit experiments, validation.

Pure: imports neither pytest, torch nor docker. Every structural problem of a file is
collected and raised together in one StudyError; per-point validation errors do not stop the
study (those points become skipped items).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from pytest_llem.errors import Problem, StudyError
from pytest_llem.study import compat, loader
from pytest_llem.study.backends import BackendRegistry
from pytest_llem.study.experiment import ExperimentConfig
from pytest_llem.study.grammar import (
    deep_merge,
    expand_dotted,
    flatten,
    scoped_backend,
    set_path,
)
from pytest_llem.study.identity import id_part, short_hash, unique_ids
from pytest_llem.study.plan import Point, StudyPlan
from pytest_llem.study.sections import (
    AB_ARMS,
    AbConfig,
    ExecutionConfig,
    GateConfig,
    RunnersConfig,
)
from pytest_llem.study.sources import source_problem
from pytest_llem.study.structure import STUDY_KEYS, Dim, Expander, fix_for

DEFAULT_MAX_POINTS = 10_000


def format_validation_error(exc: ValidationError) -> str:
    """One line per pydantic error: ``field.path: message``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


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


def build(
    doc: loader.Document,
    root: Path | None,
    max_points: int,
    registry: BackendRegistry,
    cycles: int | None = None,
) -> StudyPlan:
    """Expand a parsed study document into a plan (raises StudyError on structural problems).

    ``cycles`` overrides ``execution.n_cycles`` (before the study hash is computed, so the
    order and identity are those of the study as it runs).
    """
    ex = Expander(doc, root, max_points, registry)
    upgraded = compat.upgrade(doc, registry)
    ex.problems.extend(upgraded.problems)
    ex.notes.extend(upgraded.summary(doc.path.name))
    data = doc.data
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else type(data).__name__
        raise StudyError.single(
            doc.path,
            "",
            f"a study file must be a mapping of keys, got {kind}",
            "start from the example in the README: `model: ...`, `sweep: {...}`",
            1,
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
    names = registry.names
    sections = {s for s in names if s in fixed} | {
        s for entry, _ in experiments for s in names if s in entry
    }
    if fixed_backend is None and backend_dim is None:
        fixed_backend = base_backend  # a base file's backend is a default the study may sweep
    backends = ex.resolve_backends(fixed_backend, backend_dim, scoped, sections)

    execution = ex.validate_section(
        ex.check_section(data, "execution", ExecutionConfig), "execution", ExecutionConfig
    )
    if cycles is not None and cycles != execution.n_cycles:
        ex.notes.append(
            f"{doc.path.name}: {cycles} cycles per config (set for this run; the file says "
            f"execution.n_cycles: {execution.n_cycles})"
        )
        execution = execution.model_copy(update={"n_cycles": cycles})
    runners = ex.validate_section(
        ex.check_section(data, "runners", RunnersConfig, registry.names),
        "runners",
        RunnersConfig,
    )
    gate = ex.validate_section(ex.check_section(data, "gate", GateConfig), "gate", GateConfig)
    ab = ex.check_ab(data)

    # A backend list alone is a dimension too (the original and DESIGN: sweep points plus
    # the explicit experiments).
    has_dims = bool(universal) or any(scoped.get(b) for b in backends) or backend_dim is not None
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
                _apply(
                    raw, [(path, value) for (path, _, _), value in zip(dims, combo, strict=True)]
                )
                raws.append((raw, sweep_line, "sweep" if has_dims else "study"))
    for index, (entry, line) in enumerate(experiments):
        for backend in _entry_backends(entry, backends, names):
            raw = deep_merge(fixed, entry)
            raw["backend"] = backend
            raws.append((raw, line, f"experiments[{index}]"))

    # Id parts follow the order the dimensions are written in the file.
    dims_all = [*universal, *(d for dims in scoped.values() for d in dims)]
    candidates = [path for path, _, line in sorted(dims_all, key=lambda d: d[2] or 0)]
    candidates += [path for entry, _ in experiments for path, _ in flatten(entry)]
    plan = _finish(doc, data, raws, candidates, execution, runners, gate, tuple(ex.notes), ex.model)
    return plan if ab is None else _with_arms(plan, ab, ex.model)


def _apply(raw: dict[str, Any], assignments: list[tuple[tuple[str, ...], Any]]) -> None:
    """Set one grid point's sweep values, independent of the order the keys are written in.

    Shorter paths go first, so ``decoder: [{top_p: 0.9}]`` and ``decoder.temperature`` combine
    (the specific key wins on overlap); a mapping value merges into what is already there.
    """
    for path, value in sorted(assignments, key=lambda pair: len(pair[0])):
        current = _get(raw, path)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            value = deep_merge(current, value)
        set_path(raw, path, value)


def _parse_experiments(ex: Expander, value: Any) -> list[tuple[dict[str, Any], int | None]]:
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        ex.problem(
            ("experiments",),
            "must be a non-empty list of mappings",
            "write experiments: [{precision: fp32}, ...], or remove the key",
        )
        return []
    out = []
    for index, entry in enumerate(value):
        if not isinstance(entry, Mapping):
            ex.problem(
                ("experiments", index),
                "each experiment must be a mapping",
                "write each entry as keys: - {model: gpt2, precision: fp16}",
            )
            continue
        ex.check_block(entry, ("experiments", index))
        nested = expand_dotted(entry)
        if isinstance(nested.get("backend"), list):
            ex.problem(
                ("experiments", index, "backend"),
                "must be one backend",
                "write one experiment per backend, or sweep over backend: [...]",
            )
            continue
        out.append((nested, ex.doc.line_of(("experiments", index))))
    return out


def _entry_backends(
    entry: Mapping[str, Any], backends: list[str], registered: tuple[str, ...]
) -> list[str]:
    if isinstance(entry.get("backend"), str):
        return [entry["backend"]]
    named = [b for b in registered if b in entry]
    return named[:1] if named else backends


_Validated = tuple[dict[str, Any], ExperimentConfig | None, str | None, str, int | None, str]


def _validate(
    raws: list[tuple[dict[str, Any], int | None, str]],
    warnings: list[str],
    model: type[ExperimentConfig],
) -> tuple[list[_Validated], dict[int, tuple[str, tuple[str | int, ...]]]]:
    """Validate every raw point; exact repeats are dropped with a warning."""
    validated: list[_Validated] = []
    fixes: dict[int, tuple[str, tuple[str | int, ...]]] = {}
    seen_full: dict[str, int] = {}
    for raw, line, origin in raws:
        fix = None
        try:
            config: ExperimentConfig | None = model.model_validate(raw)
            error = None
        except ValidationError as exc:
            config, error = None, format_validation_error(exc)
            fix = (fix_for(exc.errors()), tuple(exc.errors()[0]["loc"]) if exc.errors() else ())
        digest = short_hash(config.workload()) if config is not None else short_hash(raw)
        # Exact duplicates (protocol fields included); same file, so field order is stable.
        full = config.model_dump_json() if config is not None else digest
        if full in seen_full:
            warnings.append(f"{origin} repeats an earlier point exactly; it runs once")
            continue
        seen_full[full] = len(validated)
        if fix is not None:
            fixes[len(validated)] = fix
        validated.append((raw, config, error, digest, line, origin))
    return validated, fixes


def _error_line(doc: loader.Document, loc: tuple[str | int, ...]) -> int | None:
    """The line of the field an error names, else of the file's first key."""
    line = doc.line_of(loc)
    return line if line is not None else min(doc.lines.values(), default=None)


def _passthrough_notes(
    doc: loader.Document, points: tuple[Point, ...], registry: BackendRegistry
) -> list[str]:
    """Undeclared keys of open blocks (``vllm.engine``) are accepted here: say where they go."""
    keys: dict[tuple[str, str], set[str]] = {}  # (backend, block) -> keys
    for p in points:
        if p.config is None or not registry.get(p.config.backend).passthrough:
            continue
        section = p.config.section()
        for field in type(section).model_fields:
            block = getattr(section, field)
            if isinstance(block, BaseModel) and block.model_extra:
                keys.setdefault((p.config.backend, field), set()).update(block.model_extra)
    return [
        f"{doc.path.name}: {backend}.{block} keys {sorted(found)} go to "
        f"{registry.get(backend).passthrough}"
        for (backend, block), found in sorted(keys.items())
    ]


def _check_datasets(doc: loader.Document, points: tuple[Point, ...]) -> None:
    """Dataset names and files are checked at collection, not after a model has loaded."""
    problems: dict[str, Problem] = {}
    for point in points:
        if point.config is None or point.config.dataset.source in problems:
            continue
        source = point.config.dataset.source
        found = source_problem(source, doc.path.parent)
        if found is not None:
            top = doc.data.get("dataset")
            written = top.get("source") if isinstance(top, Mapping) else top
            line = doc.line_of(("dataset",)) if written == source else point.line
            problems[source] = Problem("dataset", found[0], found[1], line)
    if problems:
        raise StudyError(doc.path, list(problems.values()))


def _finish(
    doc: loader.Document,
    data: Mapping[str, Any],
    raws: list[tuple[dict[str, Any], int | None, str]],
    candidates: list[tuple[str, ...]],
    execution: ExecutionConfig,
    runners: RunnersConfig,
    gate: GateConfig,
    notes: tuple[str, ...] = (),
    model: type[ExperimentConfig] = ExperimentConfig,
) -> StudyPlan:
    warnings: list[str] = []
    validated, fixes = _validate(raws, warnings, model)
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
        Point(
            id=i,
            config_hash=d,
            raw=r,
            config=c,
            error=e,
            # A point written at the top level has no line of its own: point at the field.
            line=ln if ln is not None or k not in fixes else _error_line(doc, fixes[k][1]),
            origin=o,
            fix=fixes[k][0] if k in fixes else None,
        )
        for k, (i, (r, c, e, d, ln, o)) in enumerate(zip(ids, validated, strict=True))
    )
    _check_datasets(doc, points)
    notes = (*notes, *_passthrough_notes(doc, points, model.backends))
    invalid = sum(1 for p in points if not p.valid)
    if points and invalid == len(points):
        raise StudyError(
            doc.path,
            [Problem(f"point {p.id}", p.error or "invalid", p.fix, p.line) for p in points[:20]],
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
        notes=notes,
    )


def _with_arms(plan: StudyPlan, ab: AbConfig, model: type[ExperimentConfig]) -> StudyPlan:
    """Each grid point becomes two: its reference and its candidate arm, each with the arm's
    overrides applied (a key scoped to another backend leaves the point alone). Arms are
    validated apart, so two identical arms (an A/A run) are two points, not one repeat."""
    points: list[Point] = []
    for base in plan.points:
        for name in AB_ARMS:
            raw = deep_merge(base.raw, {})
            assignments = []
            for key, value in ab.arm(name).overrides.items():
                backend, path = scoped_backend(key, model.backends.names)
                if backend is None or backend == base.backend:
                    assignments.append((path, value))
            _apply(raw, assignments)
            config: ExperimentConfig | None = None
            error, fix = base.error, base.fix
            if base.valid:
                try:
                    config = model.model_validate(raw)
                except ValidationError as exc:
                    error, fix = format_validation_error(exc), fix_for(exc.errors())
            digest = short_hash(config.workload()) if config is not None else short_hash(raw)
            points.append(
                dataclasses.replace(
                    base,
                    id=f"{base.id}-{name}",
                    config_hash=digest,
                    raw=raw,
                    config=config,
                    error=error,
                    fix=fix,
                    arm=name,
                    pair=base.id,
                )
            )
    study_hash = short_hash({"plan": plan.study_hash, "ab": ab.model_dump(mode="json")})
    return dataclasses.replace(plan, points=tuple(points), ab=ab, study_hash=study_hash)


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
    path: Path | str,
    registry: BackendRegistry,
    root: Path | str | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
    cycles: int | None = None,
) -> StudyPlan:
    """Load a study file into a StudyPlan.

    Args:
        path: the study YAML file.
        root: ``base:`` files must resolve inside this directory (the pytest rootdir).
        max_points: refuse grids larger than this (the computed size is in the error).
        registry: the session's backends (``engines.builtin.BUILTIN`` for the built-ins).
        cycles: cycles per config for this run, overriding ``execution.n_cycles``.

    Raises:
        StudyError: every structural problem of the file, together.
    """
    file = Path(path)
    return build(
        loader.read(file), Path(root) if root is not None else None, max_points, registry, cycles
    )
