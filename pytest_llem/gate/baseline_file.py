"""Baselines: readable JSON files of per-cycle samples, keyed by config hash and hardware.

An H100 result is never compared with an A100 baseline: the hardware fingerprint (GPU model,
driver major, power limit, or the CPU model for cpu points) is part of the key.

Schema versions: 1 (samples only) stays readable; 2 adds each entry's cycle-to-cycle ``cv``
per metric, so that a later comparison can say how steady its reference was; 3 adds each
entry's answers (``quality``: per prompt the output token ids and top-k lists, mean output
tokens per request, perplexity) where the study set ``quality:``. An entry without them
(versions 1 and 2, or a study without ``quality:``) still loads: a quality limit then says
the baseline has no quality data, and is not a pass.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pytest_llem.errors import LlemError
from pytest_llem.gate.cycles import collect
from pytest_llem.gate.hardware import differences
from pytest_llem.results.records import QualityRecord, write_json_atomic
from pytest_llem.stats.descriptive import cv, mean
from pytest_llem.study.metrics import METRICS


class BaselineError(LlemError):
    """A baseline that cannot be read or written; names the file."""


class BaselineEntry(BaseModel):
    """One configuration on one hardware: its metric samples, one per cycle."""

    model_config = ConfigDict(extra="forbid")

    config_hash: str
    hardware: str
    point_id: str
    study: str
    samples: dict[str, list[float]]
    cv: dict[str, float] = Field(default_factory=dict)  # version 2; absent from version 1
    quality: QualityRecord | None = None  # version 3; only where the study set quality:


Match = Literal["found", "other_hardware", "other_config", "absent"]


@dataclass(frozen=True)
class Lookup:
    """A baseline lookup: the entry, or which kind of mismatch and the words for it."""

    entry: BaselineEntry | None
    match: Match
    note: str


class BaselineFile(BaseModel):
    """A named baseline."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["pytest-llem-baseline"] = "pytest-llem-baseline"
    version: Literal[1, 2, 3] = 3
    name: str
    created_at: str
    entries: list[BaselineEntry] = Field(default_factory=list)

    def lookup(
        self,
        config_hash: str,
        hardware: str,
        point_id: str | None = None,
        study: str | None = None,
    ) -> Lookup:
        """The entry for this config on this hardware, or why there is none: the config held
        only for other hardware (naming both and what differs), the point held under another
        config hash (the study changed; ``study`` scopes the point id, since two studies may
        name their points alike), or nothing."""
        same_config = [e for e in self.entries if e.config_hash == config_hash]
        for entry in same_config:
            if entry.hardware == hardware:
                return Lookup(entry, "found", "")
        if same_config:
            theirs = same_config[0].hardware
            differs = "; ".join(differences(theirs, hardware)) or "the fingerprints"
            return Lookup(
                None,
                "other_hardware",
                (
                    f"baseline {self.name!r} holds this config only for other hardware: "
                    f"{theirs} (this run: {hardware}); differs: {differs}"
                ),
            )
        renamed = [
            e
            for e in self.entries
            if point_id is not None
            and e.point_id == point_id
            and (study is None or e.study == study)
        ]
        if renamed:
            old = renamed[0]
            return Lookup(
                None,
                "other_config",
                (
                    f"baseline {self.name!r} holds point {point_id} with config hash "
                    f"{old.config_hash} (this run: {config_hash}): the study changed since the "
                    "baseline was saved"
                ),
            )
        return Lookup(
            None, "absent", f"baseline {self.name!r} has no entry for config {config_hash}"
        )


def resolve(name_or_path: str, baseline_dir: Path) -> Path:
    """A path as given (when it looks like one), else ``<baseline_dir>/<name>.json``."""
    if "/" in name_or_path or name_or_path.endswith(".json"):
        return Path(name_or_path)
    return baseline_dir / f"{name_or_path}.json"


def load(path: Path) -> BaselineFile:
    """Read a baseline file.

    Raises:
        BaselineError: missing, corrupt, or not a pytest-llem baseline.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BaselineError(
            f"cannot read baseline {path}: {exc.strerror}",
            "save one first with --llem-save-baseline NAME, or check the name/path",
        ) from None
    try:
        return BaselineFile.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise BaselineError(
            f"{path} is not a pytest-llem baseline ({where}: {first['msg']})",
            "regenerate it with --llem-save-baseline, or point --llem-compare at the right file",
        ) from None


def build(name: str, results: Iterable[Any]) -> BaselineFile:
    """A baseline from session results (items with metrics), samples ordered by cycle."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for result in results:
        if result.metrics is None or result.outcome in ("skipped", "error"):
            continue
        if getattr(result, "arm", None) == "candidate":
            continue  # an A/B study's baseline is its reference: the candidate is on trial
        groups.setdefault((result.config_hash, result.hardware or "unknown"), []).append(result)
    entries = []
    for (config_hash, hardware), items in groups.items():
        items.sort(key=lambda r: r.cycle)
        metrics = [{k: v for k, v in r.metrics.model_dump().items() if k in METRICS} for r in items]
        samples = collect(metrics)
        entries.append(
            BaselineEntry(
                config_hash=config_hash,
                hardware=hardware,
                point_id=items[0].point_id,
                study=items[0].study,
                samples=samples,
                cv={m: abs(cv(v)) for m, v in samples.items() if len(v) >= 2 and mean(v)},
                quality=stored_answers([getattr(r, "quality", None) for r in items]),
            )
        )
    created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    return BaselineFile(name=name, created_at=created, entries=entries)


def stored_answers(records: Sequence[QualityRecord | None]) -> QualityRecord | None:
    """What a baseline keeps of a config's answers: the first cycle's outputs (greedy outputs
    repeat), the cycles' mean output length and perplexity (None: no cycle recorded any)."""
    kept = [r for r in records if r is not None]
    if not kept:
        return None
    ppl = [r.perplexity for r in kept if r.perplexity is not None]
    return kept[0].model_copy(
        update={
            "output_tokens_per_request": mean([r.output_tokens_per_request for r in kept]),
            "perplexity": mean(ppl) if ppl else None,
        }
    )


def save(path: Path, baseline: BaselineFile) -> None:
    """Write atomically (readers never see half a file)."""
    try:
        write_json_atomic(path, baseline.model_dump(mode="json"))
    except OSError as exc:
        raise BaselineError(
            f"cannot write baseline {path}: {exc.strerror}", "check the directory"
        ) from None
