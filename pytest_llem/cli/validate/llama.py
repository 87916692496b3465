"""Random-weight Llama models of real dimensions (no download), for the validation kit."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Shape:
    """The dimensions that set a model's compute and memory traffic per token."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int


# Llama 3.2 1B and Llama 3.1 8B dimensions; `tiny` runs the same code path on a CPU in tests.
SHAPES: dict[str, Shape] = {
    "1b": Shape(hidden=2048, layers=16, heads=32, kv_heads=8, intermediate=8192, vocab=128256),
    "8b": Shape(hidden=4096, layers=32, heads=32, kv_heads=8, intermediate=14336, vocab=128256),
    "tiny": Shape(hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128, vocab=1024),
}


def build_random_llama(shape: Shape, target: Path, device: str, seed: int = 0) -> Path:
    """Save a random-weight ``LlamaForCausalLM`` of ``shape`` (bf16) and a local tokenizer.

    Weights are initialised on ``device`` (a GPU makes an 8B init take seconds, not minutes).
    The tokenizer is trained locally as ``testing`` does; its few hundred tokens index into
    the model's full vocabulary, so generation and decoding are those of a real model.
    """
    import torch
    import transformers

    from pytest_llem.testing import _train_tokenizer

    target.mkdir(parents=True, exist_ok=True)
    _train_tokenizer(target)
    config = transformers.LlamaConfig(
        vocab_size=shape.vocab,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=4096,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    torch.manual_seed(seed)
    llama: Any = transformers.LlamaForCausalLM  # untyped classmethod in transformers
    with torch.device(device):
        model = llama._from_config(config, torch_dtype=torch.bfloat16)
    model.save_pretrained(target)
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return target
