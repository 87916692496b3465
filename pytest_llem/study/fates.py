"""What became of every field of LLenergyMeasure's v2 study/experiment schema: a data table.

Each row names a field of the original (a dotted path from the experiment root; study-level
keys as themselves, ``execution.*`` inside the execution block) and its fate here:

- ``same``: accepted under the same name and acting as the original's did;
- ``renamed``: accepted under the old name, moved to ``new`` with one note per file
  (``python -m pytest_llem migrate`` rewrites the file);
- ``dropped``: the values in ``accept`` match what this project does anyway and are accepted
  with a note; any other value is refused with ``reason``.

Rows of a backend's own section are declared by that backend (``BackendSpec.fates``), so
nothing here names one. ``tests/unit/study/data/llem_v2_fields.txt`` lists the original's
fields; a test checks that the built-in registry's table covers it and that every
``same``/``renamed`` target exists in the models here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

FateKind = Literal["same", "renamed", "dropped"]


@dataclass(frozen=True)
class Fate:
    """The fate of one field of the original schema."""

    old: str
    kind: FateKind
    new: str | None = None
    reason: str = ""
    accept: tuple[Any, ...] = ()
    # renamed only: when both the old and the new key are given with different values,
    # "error" refuses the file; "keep_new" drops the old key with a note.
    conflict: Literal["error", "keep_new"] = "error"
    quiet: bool = False  # dropped without a note (a marker that never meant anything)


def same(*names: str) -> tuple[Fate, ...]:
    """Rows for fields accepted under the same name, acting as the original's did."""
    return tuple(Fate(name, "same") for name in names)


_NO_TRT = (
    "pytest-llem has no TensorRT-LLM backend; use a registered one (or register one: "
    "docs/backends.md)"
)
_COMPUTED = "computed by the original's loader, never an input; the plan computes its own"

FATES: tuple[Fate, ...] = (
    # -- study level ----------------------------------------------------------------------
    *same("name", "runners", "base", "sweep", "experiments"),
    Fate(
        "version",
        "dropped",
        reason="a schema marker the original stripped",
        accept=(...,),
        quiet=True,
    ),
    Fate("study_design_hash", "dropped", reason=_COMPUTED),
    Fate("skipped_configs", "dropped", reason=_COMPUTED),
    *same("execution.n_cycles", "execution.cycle_order", "execution.shuffle_seed"),
    Fate("execution.experiment_gap_seconds", "renamed", "execution.experiment_gap_s"),
    Fate("execution.cycle_gap_seconds", "renamed", "execution.cycle_gap_s"),
    Fate(
        "execution.skip_preflight",
        "dropped",
        reason=(
            "pre-flight here only skips (or, with --llem-require-gpu, fails) items that cannot "
            "run; there is nothing to skip. Remove the key"
        ),
        accept=(False,),
    ),
    # -- experiment ---------------------------------------------------------------------
    *same("model", "backend", "n", "dataset", "dataset_order", "precision", "random_seed"),
    *same("max_input_tokens", "max_output_tokens", "passthrough_kwargs"),
    Fate("dataset.n", "renamed", "n"),
    Fate("dataset.input_len", "same"),
    Fate("dataset.output_len", "renamed", "max_output_tokens"),
    Fate("dataset.seed", "same"),
    Fate(
        "output_dir",
        "dropped",
        reason="results go to --llem-results (ini llem_results_dir), one directory per run",
        accept=(None,),
    ),
    *same("decoder", "decoder.temperature", "decoder.do_sample", "decoder.top_k"),
    *same("decoder.top_p", "decoder.repetition_penalty", "decoder.min_p"),
    *same("decoder.min_new_tokens", "decoder.preset"),
    *same("warmup", "warmup.enabled", "warmup.n_warmup", "warmup.convergence_detection"),
    *same("warmup.cv_threshold", "warmup.window_size"),
    Fate("warmup.max_prompts", "renamed", "warmup.max_iterations"),
    # Here n_warmup is also the minimum before convergence is judged (the original's
    # min_prompts); the original ignored min_prompts without convergence detection.
    Fate("warmup.min_prompts", "renamed", "warmup.n_warmup", conflict="keep_new"),
    Fate("warmup.thermal_floor_seconds", "renamed", "thermal.min_s"),
    *same("baseline", "baseline.enabled"),
    Fate("baseline.duration_seconds", "renamed", "baseline.duration_s"),
    *same("energy", "energy.backend"),
    *same("lora", "lora.adapter_id", "lora.adapter_path", "lora.merge_weights"),
    # -- tensorrt -----------------------------------------------------------------------
    Fate("tensorrt", "dropped", reason=_NO_TRT, accept=(None,)),
    *(
        Fate(f"tensorrt.{name}", "dropped", reason=_NO_TRT)
        for name in ("max_batch_size", "tp_size", "quantization", "engine_path")
    ),
)


def table(backends: Iterable[Any] = ()) -> tuple[Fate, ...]:
    """The whole table: the universal rows and the rows of each backend's section, which a
    backend declares itself (``BackendSpec.fates``: the built-in ones in their spec modules)."""
    return (*FATES, *(fate for spec in backends for fate in spec.fates))


def by_old(backends: Iterable[Any] = ()) -> dict[str, Fate]:
    """The table by the original's field name."""
    return {fate.old: fate for fate in table(backends)}


def accepts(fate: Fate, value: Any) -> bool:
    """True when a dropped field's ``value`` matches this project's behaviour."""
    return ... in fate.accept or any(value == ok and type(value) is type(ok) for ok in fate.accept)
