"""Backend ``pytorch`` (transformers): its study section and its registry entry.

Section fields default to ``None``, meaning "the engine's own default": the effective config
then shows exactly what the researcher chose, and the config hash does not move when an engine
changes a default it owns. Pure: pydantic only, so collection never imports torch.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pytest_llem.study.backends import PROJECT_IMAGE, BackendSpec
from pytest_llem.study.fates import Fate, same


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


def section(config: Any) -> PyTorchConfig:
    """The ``pytorch:`` section of a config, or its defaults when the study left it out."""
    return cast(PyTorchConfig, config.section("pytorch"))


def _rules(config: Any) -> str | None:
    sec = section(config)
    if config.device == "cpu" and (sec.load_in_4bit or sec.load_in_8bit):
        return "bitsandbytes quantisation needs device cuda"
    return None


# What became of LLenergyMeasure's pytorch: fields (study/fates.py has the universal rows).
LLEM_FATES: tuple[Fate, ...] = (
    *same("pytorch", "pytorch.batch_size", "pytorch.attn_implementation"),
    *same("pytorch.torch_compile", "pytorch.torch_compile_mode", "pytorch.torch_compile_backend"),
    *same("pytorch.load_in_4bit", "pytorch.load_in_8bit", "pytorch.bnb_4bit_compute_dtype"),
    *same("pytorch.bnb_4bit_quant_type", "pytorch.bnb_4bit_use_double_quant"),
    *same("pytorch.use_cache", "pytorch.cache_implementation", "pytorch.num_beams"),
    *same("pytorch.early_stopping", "pytorch.length_penalty", "pytorch.no_repeat_ngram_size"),
    *same("pytorch.prompt_lookup_num_tokens", "pytorch.device_map", "pytorch.max_memory"),
    *same("pytorch.revision", "pytorch.trust_remote_code"),
    Fate(
        "pytorch.num_processes",
        "dropped",
        reason=(
            "data parallelism runs one xdist worker per GPU here (pytest -n auto), "
            "not Accelerate processes inside an item"
        ),
        accept=(None, 1),
    ),
)

PYTORCH = BackendSpec(
    name="pytorch",
    section=PyTorchConfig,
    engine="pytest_llem.engines.pytorch.engine:TransformersEngine",
    packages=("torch", "transformers"),
    install='pip install "pytest-llem[pytorch]"',
    lora=True,
    check=_rules,
    preflight="pytest_llem.engines.pytorch.preflight:checks",
    image=PROJECT_IMAGE,
    description="runs on the transformers backend",
    fates=LLEM_FATES,
)
