"""ExperimentConfig: one fully specified inference configuration (one grid point)."""

from __future__ import annotations

import functools
from typing import Any, ClassVar, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from pytest_llem.study.backends import BackendRegistry, BackendSpec
from pytest_llem.study.measurement import (
    BaselineConfig,
    EnergyConfig,
    ThermalConfig,
    ValidityConfig,
    WarmupConfig,
    WindowConfig,
)
from pytest_llem.study.quality import QualityConfig
from pytest_llem.study.serve import ServeConfig

DatasetOrder = Literal["interleaved", "grouped", "shuffled"]
NO_BACKENDS = BackendRegistry(())

SAMPLING_PRESETS: dict[str, dict[str, Any]] = {
    "deterministic": {"temperature": 0.0, "do_sample": False},
    "standard": {"temperature": 1.0, "do_sample": True, "top_p": 0.95},
    "creative": {"temperature": 0.8, "do_sample": True, "top_p": 0.9, "repetition_penalty": 1.1},
    "factual": {"temperature": 0.3, "do_sample": True},
}

# Fields that define *what is measured*, with the active backend's section. The config hash
# covers these only: output locations, the runner and the measurement protocol change how,
# not what, so they keep the identity.
WORKLOAD_FIELDS: frozenset[str] = frozenset(
    {
        "model",
        "backend",
        "device",
        "n",
        "dataset",
        "dataset_order",
        "precision",
        "random_seed",
        "max_input_tokens",
        "max_output_tokens",
        "decoder",
        "lora",
        "passthrough_kwargs",
        "serve",
    }
)


class _Section(BaseModel):
    # Frozen: sections are shared as defaults (no per-point copies) and safe to hash.
    model_config = ConfigDict(extra="forbid", frozen=True)


class DecoderConfig(_Section):
    """Generation settings with the same meaning on every backend.

    The default is greedy decoding: output lengths then depend on the model only, which keeps
    energy-per-token comparisons between runs free of sampling noise.
    """

    preset: Literal["deterministic", "standard", "creative", "factual"] | None = None
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    do_sample: bool | None = Field(
        default=None, description="None: sample exactly when temperature > 0"
    )
    top_k: int | None = Field(default=None, ge=0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    min_p: float | None = Field(default=None, ge=0.0, le=1.0)
    repetition_penalty: float = Field(default=1.0, ge=0.1, le=10.0)
    min_new_tokens: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        # Preset first, explicit keys on top: `preset: creative, temperature: 0.5` means
        # "creative, but cooler".
        if isinstance(data, dict) and isinstance(data.get("preset"), str):
            preset = SAMPLING_PRESETS.get(data["preset"])
            if preset is not None:
                return {**preset, **data}
        return data

    @model_validator(mode="after")
    def _check_sampling(self) -> DecoderConfig:
        if self.do_sample is True and self.temperature == 0.0:
            raise ValueError(
                "do_sample: true with temperature: 0 is contradictory; "
                "set temperature > 0 to sample, or do_sample: false for greedy decoding"
            )
        return self

    @property
    def sampling(self) -> bool:
        """True when tokens are sampled rather than chosen greedily."""
        return self.do_sample if self.do_sample is not None else self.temperature > 0.0


class DatasetConfig(_Section):
    """Where prompts come from: ``synthetic``, a built-in name, or a ``.jsonl`` path."""

    source: str = Field(default="synthetic", min_length=1)
    input_len: int = Field(default=64, ge=1, description="Synthetic prompt length in tokens")
    seed: int | None = Field(default=None, description="Synthetic seed; None: random_seed")
    column: str | None = Field(default=None, description="JSONL prompt field; None: detect")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, data: Any) -> Any:
        return {"source": data} if isinstance(data, str) else data


class LoRAConfig(_Section):
    """A LoRA adapter applied on top of the model (exactly one source)."""

    adapter_id: str | None = None
    adapter_path: str | None = None
    merge_weights: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> LoRAConfig:
        if (self.adapter_id is None) == (self.adapter_path is None):
            raise ValueError("lora needs exactly one of adapter_id or adapter_path")
        return self


class ExperimentConfig(_Section):
    """One inference configuration: the unit the plugin measures.

    The backend sections (one per registered backend) are fields added per registry by
    ``experiment_model``; ``backends`` is the registry the class was made for. Devices and
    precisions are open names, checked against the backend's declared ones.
    """

    backends: ClassVar[BackendRegistry] = NO_BACKENDS

    model: str = Field(min_length=1, description="HF id, local path, or built-in alias")
    backend: str = Field(
        default="", description="a registered backend; unset: the first registered"
    )
    device: str = Field(default="cuda", min_length=1)
    n: int = Field(default=100, ge=1, description="Prompts per measured pass")
    dataset: DatasetConfig = DatasetConfig()
    dataset_order: DatasetOrder | None = Field(
        default=None,
        description="None or interleaved: file order; grouped: by the records' source field; "
        "shuffled: seeded by random_seed (as LLenergyMeasure)",
    )
    precision: str = Field(default="bf16", min_length=1)
    random_seed: int = 42
    max_input_tokens: int = Field(default=512, ge=1)
    max_output_tokens: int = Field(default=128, ge=1)
    decoder: DecoderConfig = DecoderConfig()
    warmup: WarmupConfig = WarmupConfig()
    thermal: ThermalConfig = ThermalConfig()
    window: WindowConfig = WindowConfig()
    baseline: BaselineConfig = BaselineConfig()
    energy: EnergyConfig = EnergyConfig()
    validity: ValidityConfig = ValidityConfig()
    lora: LoRAConfig | None = None
    passthrough_kwargs: dict[str, Any] | None = None
    # Limits on the answers beside the cost (not the workload: see study/quality.py).
    quality: QualityConfig | None = None
    # Served requests under a load profile instead of offline generate calls.
    serve: ServeConfig | None = None

    @field_validator("model")
    @classmethod
    def _model_is_plain(cls, value: str) -> str:
        # Model ids travel into file paths and container commands: keep them printable.
        if any(ch in value for ch in "\n\r\0") or value != value.strip():
            raise ValueError("model must be a plain id or path without surrounding spaces")
        return value

    @field_validator("dataset_order")
    @classmethod
    def _file_order_is_default(cls, value: DatasetOrder | None) -> DatasetOrder | None:
        # interleaved is file order, the default: one identity for both spellings.
        return None if value == "interleaved" else value

    @model_validator(mode="before")
    @classmethod
    def _default_backend(cls, data: Any) -> Any:
        # The registry's first backend when the study names none (pytorch for the built-ins).
        if isinstance(data, dict) and not data.get("backend") and cls.backends.names:
            return {**data, "backend": cls.backends.default}
        return data

    @model_validator(mode="after")
    def _check_backend(self) -> ExperimentConfig:
        registry = type(self).backends
        if self.backend not in registry:
            raise ValueError(f"unknown backend {self.backend!r}; use one of {list(registry.names)}")
        for name in registry.names:
            if name != self.backend and getattr(self, name, None) is not None:
                raise ValueError(
                    f"a {name}: section is set but backend is {self.backend!r}; "
                    f"remove the {name}: section or set backend: {name}"
                )
        spec = registry.get(self.backend)
        if self.device not in spec.devices:
            raise ValueError(
                f"backend {self.backend} does not run on {self.device}; "
                f"use one of {sorted(spec.devices)}"
            )
        if self.precision not in spec.precisions:
            raise ValueError(
                f"backend {self.backend} does not support precision {self.precision}; "
                f"use one of {sorted(spec.precisions)}"
            )
        if self.lora is not None and not spec.lora:
            able = [s.name for s in registry if s.lora]
            raise ValueError(f"lora is not supported on backend {self.backend}; use one of {able}")
        if self.serve is not None and self.serve.endpoint is None and spec.server is None:
            raise ValueError(
                f"backend {self.backend} starts no server of its own: set serve.endpoint to "
                "an OpenAI-compatible server that is running (or use backend: vllm)"
            )
        greedy = self.quality.sampling_problem(self.decoder.sampling) if self.quality else None
        if greedy:
            raise ValueError(greedy)
        problem = spec.check(self) if spec.check is not None else None
        if problem:
            raise ValueError(problem)
        if self.passthrough_kwargs:
            clash = sorted(set(self.passthrough_kwargs) & set(type(self).model_fields))
            if clash:
                raise ValueError(
                    f"passthrough_kwargs keys {clash} are ExperimentConfig fields; "
                    "set them directly"
                )
        return self

    @property
    def backend_spec(self) -> BackendSpec:
        """The registry entry of this config's backend."""
        return type(self).backends.get(self.backend)

    def section(self, name: str | None = None) -> BaseModel:
        """A backend's section (the active backend's by default), or its defaults if unset."""
        name = name or self.backend
        value = getattr(self, name, None)
        return value if value is not None else type(self).backends.get(name).section()

    def workload(self) -> dict[str, Any]:
        """The workload fields as canonical JSON-ready data (what the config hash covers)."""
        fields = set(WORKLOAD_FIELDS) | set(type(self).backends.names)
        data = self.model_dump(mode="json", include=fields, exclude_none=True)
        # An absent section and a section of defaults are the same workload: hash the effective one.
        data[self.backend] = self.section().model_dump(mode="json", exclude_none=True)
        if self.serve is not None:
            data["serve"] = self.serve.workload()
        return data


@functools.cache
def experiment_model(registry: BackendRegistry) -> type[ExperimentConfig]:
    """The ExperimentConfig model of a registry: one optional field per backend section.

    Every such model subclasses ``ExperimentConfig``, so a config of any registry is one
    wherever one is expected; type checkers see the universal fields, and sections are
    reached through ``section()``.
    """
    sections: dict[str, Any] = {spec.name: (spec.section | None, None) for spec in registry}
    model = cast(
        "type[ExperimentConfig]",
        create_model(
            "ExperimentConfig", __base__=ExperimentConfig, __module__=__name__, **sections
        ),
    )
    model.backends = registry
    return model
