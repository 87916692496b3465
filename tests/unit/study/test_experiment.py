"""BuiltinConfig cross-field validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pytest_llem.engines.builtin import BuiltinConfig


def make(**kw: object) -> BuiltinConfig:
    return BuiltinConfig.model_validate({"model": "m", **kw})


def test_defaults_are_greedy_decoding() -> None:
    config = make()
    assert config.decoder.sampling is False
    assert make(decoder={"temperature": 0.7}).decoder.sampling is True


def test_presets_expand_and_explicit_values_win() -> None:
    dec = make(decoder={"preset": "creative", "temperature": 0.5}).decoder
    assert (dec.temperature, dec.top_p, dec.repetition_penalty) == (0.5, 0.9, 1.1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"decoder": {"do_sample": True, "temperature": 0.0}}, "contradictory"),
        ({"backend": "vllm", "pytorch": {"batch_size": 2}}, "pytorch: section"),
        ({"backend": "vllm", "precision": "fp32"}, "fp32"),
        ({"backend": "vllm", "lora": {"adapter_id": "a"}}, "lora is not supported on backend vllm"),
        ({"device": "cpu", "pytorch": {"load_in_4bit": True}}, "needs device cuda"),
        ({"pytorch": {"load_in_4bit": True, "load_in_8bit": True}}, "exclusive"),
        ({"pytorch": {"torch_compile_mode": "max-autotune"}}, "torch_compile: true"),
        ({"passthrough_kwargs": {"model": "x"}}, "set them directly"),
        ({"lora": {}}, "exactly one"),
        (
            {"warmup": {"convergence_detection": True, "max_iterations": 2, "window_size": 3}},
            "max_iterations",
        ),
        ({"thermal": {"min_s": 10, "max_s": 5}}, "max_s"),
        ({"validity": {"fail_on": ["hot"]}}, "unknown warning codes"),
        ({"model": " padded "}, "surrounding spaces"),
    ],
)
def test_invalid_combinations(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        make(**fields)


def test_energy_backend_null_from_yaml_none() -> None:
    assert make(energy={"backend": None}).energy.backend == "null"


def test_dataset_string_shorthand() -> None:
    assert make(dataset="prompts-en").dataset.source == "prompts-en"
