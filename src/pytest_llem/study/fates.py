"""What became of every field of LLenergyMeasure's v2 study/experiment schema: a data table.

Each row names a field of the original (a dotted path from the experiment root; study-level
keys as themselves, ``execution.*`` inside the execution block) and its fate here:

- ``same``: accepted under the same name and acting as the original's did;
- ``renamed``: accepted under the old name, moved to ``new`` with one note per file
  (``python -m pytest_llem migrate`` rewrites the file);
- ``dropped``: the values in ``accept`` match what this project does anyway and are accepted
  with a note; any other value is refused with ``reason``.

``tests/unit/study/data/llem_v2_fields.txt`` lists the original's fields; a test checks that
this table covers it and that every ``same``/``renamed`` target exists in the models here.
"""

from __future__ import annotations

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


def _same(*names: str) -> tuple[Fate, ...]:
    return tuple(Fate(name, "same") for name in names)


_NO_TRT = "the TensorRT-LLM backend is not supported here; use backend pytorch or vllm"
_COMPUTED = "computed by the original's loader, never an input; the plan computes its own"

FATES: tuple[Fate, ...] = (
    # -- study level ----------------------------------------------------------------------
    *_same("name", "runners", "base", "sweep", "experiments"),
    Fate(
        "version",
        "dropped",
        reason="a schema marker the original stripped",
        accept=(...,),
        quiet=True,
    ),
    Fate("study_design_hash", "dropped", reason=_COMPUTED),
    Fate("skipped_configs", "dropped", reason=_COMPUTED),
    *_same("execution.n_cycles", "execution.cycle_order", "execution.shuffle_seed"),
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
    *_same("model", "backend", "n", "dataset", "dataset_order", "precision", "random_seed"),
    *_same("max_input_tokens", "max_output_tokens", "passthrough_kwargs"),
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
    *_same("decoder", "decoder.temperature", "decoder.do_sample", "decoder.top_k"),
    *_same("decoder.top_p", "decoder.repetition_penalty", "decoder.min_p"),
    *_same("decoder.min_new_tokens", "decoder.preset"),
    *_same("warmup", "warmup.enabled", "warmup.n_warmup", "warmup.convergence_detection"),
    *_same("warmup.cv_threshold", "warmup.window_size"),
    Fate("warmup.max_prompts", "renamed", "warmup.max_iterations"),
    # Here n_warmup is also the minimum before convergence is judged (the original's
    # min_prompts); the original ignored min_prompts without convergence detection.
    Fate("warmup.min_prompts", "renamed", "warmup.n_warmup", conflict="keep_new"),
    Fate("warmup.thermal_floor_seconds", "renamed", "thermal.min_s"),
    *_same("baseline", "baseline.enabled"),
    Fate("baseline.duration_seconds", "renamed", "baseline.duration_s"),
    *_same("energy", "energy.backend"),
    *_same("lora", "lora.adapter_id", "lora.adapter_path", "lora.merge_weights"),
    # -- pytorch ------------------------------------------------------------------------
    *_same("pytorch", "pytorch.batch_size", "pytorch.attn_implementation"),
    *_same("pytorch.torch_compile", "pytorch.torch_compile_mode", "pytorch.torch_compile_backend"),
    *_same("pytorch.load_in_4bit", "pytorch.load_in_8bit", "pytorch.bnb_4bit_compute_dtype"),
    *_same("pytorch.bnb_4bit_quant_type", "pytorch.bnb_4bit_use_double_quant"),
    *_same("pytorch.use_cache", "pytorch.cache_implementation", "pytorch.num_beams"),
    *_same("pytorch.early_stopping", "pytorch.length_penalty", "pytorch.no_repeat_ngram_size"),
    *_same("pytorch.prompt_lookup_num_tokens", "pytorch.device_map", "pytorch.max_memory"),
    *_same("pytorch.revision", "pytorch.trust_remote_code"),
    Fate(
        "pytorch.num_processes",
        "dropped",
        reason=(
            "data parallelism runs one xdist worker per GPU here (pytest -n auto), "
            "not Accelerate processes inside an item"
        ),
        accept=(None, 1),
    ),
    # -- vllm ---------------------------------------------------------------------------
    *_same("vllm", "vllm.engine", "vllm.sampling", "vllm.beam_search"),
    *_same("vllm.engine.gpu_memory_utilization", "vllm.engine.swap_space"),
    *_same("vllm.engine.block_size", "vllm.engine.kv_cache_dtype", "vllm.engine.enforce_eager"),
    *_same("vllm.engine.enable_chunked_prefill", "vllm.engine.max_num_seqs"),
    *_same("vllm.engine.max_num_batched_tokens", "vllm.engine.max_model_len"),
    *_same("vllm.engine.tensor_parallel_size", "vllm.engine.pipeline_parallel_size"),
    *_same("vllm.engine.enable_prefix_caching", "vllm.engine.quantization"),
    *_same("vllm.engine.compilation_config", "vllm.engine.attention"),
    # Passed to vLLM's EngineArgs as they are (checked against the installed vLLM).
    *_same("vllm.engine.cpu_offload_gb", "vllm.engine.disable_custom_all_reduce"),
    *_same("vllm.engine.kv_cache_memory_bytes", "vllm.engine.offload_group_size"),
    *_same("vllm.engine.offload_num_in_group", "vllm.engine.offload_prefetch_step"),
    *_same("vllm.engine.offload_params"),
    Fate("vllm.engine.speculative_model", "renamed", "vllm.engine.speculative_config.model"),
    Fate(
        "vllm.engine.num_speculative_tokens",
        "renamed",
        "vllm.engine.speculative_config.num_speculative_tokens",
    ),
    # Forwarded to vLLM's attention config as they are.
    *_same("vllm.engine.attention.backend", "vllm.engine.attention.flash_attn_version"),
    *_same("vllm.engine.attention.flash_attn_max_num_splits_for_cuda_graph"),
    *_same("vllm.engine.attention.use_prefill_decode_attention"),
    *_same("vllm.engine.attention.use_prefill_query_quantization"),
    *_same("vllm.engine.attention.use_cudnn_prefill"),
    *_same("vllm.engine.attention.disable_flashinfer_prefill"),
    *_same("vllm.engine.attention.disable_flashinfer_q_quantization"),
    *_same("vllm.engine.attention.use_trtllm_attention"),
    *_same("vllm.engine.attention.use_trtllm_ragged_deepseek_prefill"),
    *_same("vllm.sampling.presence_penalty", "vllm.sampling.frequency_penalty"),
    *_same("vllm.sampling.ignore_eos", "vllm.sampling.max_tokens", "vllm.sampling.min_tokens"),
    Fate(
        "vllm.sampling.n",
        "dropped",
        reason=(
            "one output sequence per prompt keeps energy per output token comparable "
            "across backends; use beam_search for several candidates"
        ),
        accept=(None, 1),
    ),
    *_same("vllm.beam_search.beam_width", "vllm.beam_search.length_penalty"),
    *_same("vllm.beam_search.max_tokens"),
    Fate(
        "vllm.beam_search.early_stopping",
        "dropped",
        reason="vLLM's BeamSearchParams has no early_stopping; remove the key",
        accept=(None, False),
    ),
    # -- tensorrt -----------------------------------------------------------------------
    Fate("tensorrt", "dropped", reason=_NO_TRT, accept=(None,)),
    *(
        Fate(f"tensorrt.{name}", "dropped", reason=_NO_TRT)
        for name in ("max_batch_size", "tp_size", "quantization", "engine_path")
    ),
)

BY_OLD: dict[str, Fate] = {fate.old: fate for fate in FATES}


def accepts(fate: Fate, value: Any) -> bool:
    """True when a dropped field's ``value`` matches this project's behaviour."""
    return ... in fate.accept or any(value == ok and type(value) is type(ok) for ok in fate.accept)
