"""Shared test fixtures: tiny offline models and study-file helpers. Nothing here is autouse."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

# Models can never be downloaded in tests; huggingface_hub reads this once, at import time.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "energy per token is the figure of merit for inference",
    "a tiny model with random weights still runs the whole code path",
    "pytest collects study files and runs every grid point as an item",
] * 20


def _train_tokenizer(target: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    fast.save_pretrained(target)


def _build(kind: str, target: Path) -> Path:
    import torch
    import transformers

    _train_tokenizer(target)
    vocab = len(transformers.AutoTokenizer.from_pretrained(target))
    torch.manual_seed(0)
    if kind == "gpt2":
        config = transformers.GPT2Config(
            vocab_size=vocab, n_positions=256, n_embd=32, n_layer=2, n_head=2,
            bos_token_id=1, eos_token_id=2, pad_token_id=3,
        )
        model = transformers.GPT2LMHeadModel(config)
    else:
        config = transformers.LlamaConfig(
            vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256,
            bos_token_id=1, eos_token_id=2, pad_token_id=3,
        )
        model = transformers.LlamaForCausalLM(config)
    model.save_pretrained(target)
    return target


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer GPT-2 with a trained 300-token BPE tokenizer and random weights (offline)."""
    return _build("gpt2", tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama (GQA) with the same tokenizer and random weights (offline)."""
    return _build("llama", tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def write_study(tmp_path: Path) -> Callable[..., Path]:
    """Write a study file (text) into tmp_path and return its path."""

    def write(text: str, name: str = "study_x.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def _fast_study(model: Path | str, extra: str = "") -> str:
    return (
        f"model: {model}\n"
        "device: cpu\nprecision: fp32\nn: 4\nmax_output_tokens: 4\nmax_input_tokens: 16\n"
        "dataset: {source: synthetic, input_len: 8}\n"
        "warmup: {n_warmup: 1}\nwindow: {min_duration_s: 0}\n"
        "validity: {min_window_s: 0, min_samples: 0}\n"
        f"{extra}"
    )


@pytest.fixture
def fast_study() -> Callable[..., str]:
    """Build study text that runs in well under a second per item on CPU (tiny model)."""
    return _fast_study
