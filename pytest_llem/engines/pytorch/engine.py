"""The transformers engine (backend name ``pytorch``). torch is imported here and only here."""

from __future__ import annotations

import contextlib
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llem.devices import GpuRef
from pytest_llem.engines import scoring
from pytest_llem.engines.cuda import gpu_refs
from pytest_llem.engines.datasets import tokenized_requests
from pytest_llem.engines.engine import (
    BatchResult,
    Completion,
    MemoryInfo,
    Request,
    Scored,
    keeps_output_ids,
)
from pytest_llem.engines.model_ref import resolve_model
from pytest_llem.engines.pytorch import spec
from pytest_llem.engines.pytorch.scoring import context_limit, score_sequences
from pytest_llem.errors import EngineError, ModelNotFoundError
from pytest_llem.study.experiment import ExperimentConfig

INSTALL_HINT = 'pip install "pytest-llem[pytorch]"'
_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def _import_torch() -> Any:
    try:
        import torch
        import transformers  # noqa: F401 - fail early with the same hint
    except ImportError as exc:
        raise EngineError(
            f"backend pytorch needs torch and transformers ({exc})", INSTALL_HINT
        ) from exc
    return torch


def preload(config: ExperimentConfig, base_dir: Path | None = None) -> None:
    """Import everything loading ``config`` will import, before a per-item timer starts.

    transformers imports model classes lazily; pytest-timeout's signal landing inside such an
    import leaves it half done, and every later item that needs the class fails with
    ``Could not import module 'LlamaConfig'``. Importing the architecture's modules (and the
    GGUF reader) here, outside the timer, leaves the load nothing to import. Best effort: a
    problem here shows up, with its proper message, when the item loads the model.
    """
    import importlib

    _import_torch()
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    ref = resolve_model(config.model, base_dir)
    common: dict[str, Any] = {"trust_remote_code": spec.section(config).trust_remote_code}
    if ref.gguf_file:
        common["gguf_file"] = ref.gguf_file
        for name in ("gguf", "transformers.modeling_gguf_pytorch_utils"):
            with contextlib.suppress(Exception):
                importlib.import_module(name)
    model_config = AutoConfig.from_pretrained(ref.name_or_path, **common)
    package = importlib.import_module(f"transformers.models.{model_config.model_type}")
    for sub in sorted(getattr(package, "_modules", ())):
        with contextlib.suppress(Exception):  # optional extras (flax, sentencepiece...)
            importlib.import_module(f"{package.__name__}.{sub}")


def load_key(config: ExperimentConfig) -> str:
    """Everything that decides the loaded weights: equal keys share one loaded model."""
    section = spec.section(config)
    fields = (
        "attn_implementation",
        "torch_compile",
        "torch_compile_mode",
        "torch_compile_backend",
        "load_in_4bit",
        "load_in_8bit",
        "bnb_4bit_compute_dtype",
        "bnb_4bit_quant_type",
        "bnb_4bit_use_double_quant",
        "device_map",
        "max_memory",
        "revision",
        "trust_remote_code",
    )
    parts = [config.model, config.device, config.precision, repr(config.lora)]
    parts += [f"{name}={getattr(section, name)!r}" for name in fields]
    return "|".join(parts)


class _TokenTimer:
    """A transformers streamer that timestamps every generated token (batch size 1)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first hands the streamer the prompt
            self._prompt_seen = True
            return
        self.times.append(time.perf_counter())

    def end(self) -> None:
        """Called once generation finishes."""


class TransformersEngine:
    """A loaded Hugging Face causal LM serving the measurement protocol."""

    def __init__(self, model: Any, tokenizer: Any, device: str, base_dir: Path | None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.base_dir = base_dir
        self._torch = _import_torch()
        self.eos_ids = self._eos_ids()

    @classmethod
    def load(cls, config: ExperimentConfig, base_dir: Path | None = None) -> TransformersEngine:
        """Load tokenizer and model as configured (offline when HF_HUB_OFFLINE=1)."""
        torch = _import_torch()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        ref = resolve_model(config.model, base_dir)
        section = spec.section(config)
        common: dict[str, Any] = {"trust_remote_code": section.trust_remote_code}
        if ref.gguf_file:
            common["gguf_file"] = ref.gguf_file
        if section.revision:
            common["revision"] = section.revision
        kwargs: dict[str, Any] = {**common, "dtype": getattr(torch, _DTYPES[config.precision])}
        if section.attn_implementation:
            kwargs["attn_implementation"] = section.attn_implementation
        if config.device == "cuda":
            kwargs["device_map"] = section.device_map or "cuda"
            if section.max_memory:
                # YAML keys are strings here; accelerate wants GPU indices as ints.
                kwargs["max_memory"] = {
                    int(k) if k.isdigit() else k: v for k, v in section.max_memory.items()
                }
        if section.load_in_4bit or section.load_in_8bit:
            kwargs["quantization_config"] = _bnb_config(config)
        try:
            tokenizer: Any = AutoTokenizer.from_pretrained(ref.name_or_path, **common)
            model: Any = AutoModelForCausalLM.from_pretrained(ref.name_or_path, **kwargs)
        except OSError as exc:
            raise ModelNotFoundError(
                f"cannot load model {config.model!r}: {str(exc).splitlines()[0]}",
                "use a local path or a built-in alias, or download the model once with "
                "HF_HUB_OFFLINE unset",
            ) from exc
        except (ValueError, KeyError, ImportError, AttributeError) as exc:
            raise load_error(config.model, exc) from exc
        if config.device == "cpu":
            model = model.to("cpu")
        model.eval()
        if config.lora is not None:
            model = _apply_lora(model, config)
        if section.torch_compile:
            model.forward = torch.compile(
                model.forward,
                mode=section.torch_compile_mode,
                backend=section.torch_compile_backend or "inductor",
            )
        tokenizer.padding_side = "left"  # decoder-only models continue from the right edge
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return cls(model, tokenizer, config.device, base_dir)

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        gen_eos = getattr(self.model.generation_config, "eos_token_id", None)
        for value in (gen_eos, self.tokenizer.eos_token_id):
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, (list, tuple)):
                ids.update(int(v) for v in value)
        return ids

    # -- Engine protocol -------------------------------------------------------------------

    def requests(self, config: ExperimentConfig) -> list[Request]:
        """Tokenise ``config.n`` prompts, truncated to ``max_input_tokens``; seeds torch."""
        self._torch.manual_seed(config.random_seed)
        return tokenized_requests(self.tokenizer, config, self.base_dir)

    def batches(self, requests: list[Request], config: ExperimentConfig) -> list[list[Request]]:
        """Static batches of ``pytorch.batch_size`` (1 when streaming)."""
        size = 1 if spec.section(config).streaming else spec.section(config).batch_size
        return [requests[i : i + size] for i in range(0, len(requests), size)]

    def generate(self, batch: list[Request], config: ExperimentConfig) -> BatchResult:
        """One ``model.generate`` call over the batch, synchronised before the clock stops."""
        torch = self._torch
        enc = self.tokenizer.pad(
            {"input_ids": [list(r.token_ids) for r in batch]}, padding=True, return_tensors="pt"
        ).to(self.model.device)
        kwargs = self._generate_kwargs(config)
        timer = _TokenTimer() if spec.section(config).streaming else None
        if timer is not None:
            kwargs["streamer"] = timer
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                out = self.model.generate(**enc, **kwargs)
            self._sync()
        except torch.cuda.OutOfMemoryError as exc:
            raise EngineError(
                f"CUDA out of memory: {exc}", "lower batch_size or max tokens"
            ) from exc
        except (RuntimeError, ValueError, TypeError) as exc:
            raise EngineError(
                f"generate() failed: {exc}", "check the pytorch/decoder settings"
            ) from exc
        wall = time.perf_counter() - start
        new_tokens = out[:, enc["input_ids"].shape[1] :].tolist()
        in_counts = enc["attention_mask"].sum(dim=1).tolist()
        keep = keeps_output_ids(config)
        completions = []
        for row, n_in in zip(new_tokens, in_counts, strict=True):
            ttft, itl = _stream_times(timer, start)
            count = self._count_output(row)
            ids = tuple(row[:count]) if keep else ()
            completions.append(Completion(int(n_in), count, wall, ttft, itl, output_token_ids=ids))
        return BatchResult(completions=completions, wall_s=wall)

    # -- TokenScorer (the quality checks, after the window) --------------------------------

    def score(
        self, sequences: Sequence[Sequence[int]], starts: Sequence[int], top_k: int
    ) -> list[Scored]:
        """Each token's log probability given those before it (and the ``top_k`` most likely
        ids there), from its start on: one forward pass per sequence."""
        return score_sequences(self._torch, self.model, sequences, starts, top_k)

    def text_tokens(self, source: str | None) -> tuple[list[int], str]:
        """The perplexity text (the shipped one, or the study's file) as this model's ids."""
        return scoring.text_tokens(self.tokenizer, source, self.base_dir)

    def context_tokens(self) -> int:
        """The model's position limit (its config's, else the tokenizer's)."""
        return context_limit(self.model.config, self.tokenizer)

    def memory(self) -> MemoryInfo:
        """Peak device memory since the previous call (CUDA); on CPU, no window peak.

        On CPU the only peak is ``ru_maxrss``, the process's peak since it started (the model
        load included), which never resets: it is reported as ``process_peak_rss_mb``, never
        as the window's peak.
        """
        torch = self._torch
        model_mb = self.model.get_memory_footprint() / 1e6
        if self.device == "cuda":
            peak = torch.cuda.max_memory_allocated() / 1e6
            torch.cuda.reset_peak_memory_stats()
            return MemoryInfo(peak_mb=peak, model_mb=model_mb)
        # ru_maxrss is KiB on Linux and bytes on macOS; it never resets.
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        lifetime = rss / 1e6 if sys.platform == "darwin" else rss * 1024 / 1e6
        return MemoryInfo(
            peak_mb=None, model_mb=model_mb, details={"process_peak_rss_mb": lifetime}
        )

    def devices(self) -> list[GpuRef]:
        """CUDA devices of the model's parameters, with the UUIDs torch reports."""
        if self.device != "cuda":
            return []
        return gpu_refs(
            sorted(
                {p.device.index or 0 for p in self.model.parameters() if p.device.type == "cuda"}
            )
        )

    def close(self) -> None:
        """Drop the model and empty the CUDA cache."""
        self.model = None
        if self.device == "cuda":
            self._torch.cuda.empty_cache()

    # -- helpers ---------------------------------------------------------------------------

    def _sync(self) -> None:
        if self.device == "cuda":
            self._torch.cuda.synchronize()

    def _count_output(self, row: list[int]) -> int:
        """Generated tokens up to and including the first EOS; padding after it is not output."""
        for index, token in enumerate(row):
            if token in self.eos_ids:
                return index + 1
        return len(row)

    def _generate_kwargs(self, config: ExperimentConfig) -> dict[str, Any]:
        dec = config.decoder
        sec = spec.section(config)
        kwargs: dict[str, Any] = {
            "max_new_tokens": config.max_output_tokens,
            "do_sample": dec.sampling,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if dec.sampling:
            kwargs.update(temperature=dec.temperature, top_p=dec.top_p)
            if dec.top_k is not None:
                kwargs["top_k"] = dec.top_k
            if dec.min_p is not None:
                kwargs["min_p"] = dec.min_p
        else:  # explicit neutral values silence transformers' "unused sampling flag" warnings
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if dec.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = dec.repetition_penalty
        if dec.min_new_tokens is not None:
            kwargs["min_new_tokens"] = dec.min_new_tokens
        optional = {
            "num_beams": sec.num_beams,
            "early_stopping": sec.early_stopping,
            "length_penalty": sec.length_penalty,
            "no_repeat_ngram_size": sec.no_repeat_ngram_size,
            "prompt_lookup_num_tokens": sec.prompt_lookup_num_tokens,
            "use_cache": sec.use_cache,
            "cache_implementation": sec.cache_implementation,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        kwargs.update(config.passthrough_kwargs or {})
        return kwargs


def _stream_times(
    timer: _TokenTimer | None, start: float
) -> tuple[float | None, tuple[float, ...]]:
    if timer is None or not timer.times:
        return None, ()
    ttft = timer.times[0] - start
    itl = tuple(b - a for a, b in zip(timer.times, timer.times[1:], strict=False))
    return ttft, itl


def _bnb_config(config: ExperimentConfig) -> Any:
    from transformers import BitsAndBytesConfig

    factory: Any = BitsAndBytesConfig  # untyped in transformers
    sec = spec.section(config)
    extra: dict[str, Any] = {}
    if sec.bnb_4bit_compute_dtype:
        extra["bnb_4bit_compute_dtype"] = sec.bnb_4bit_compute_dtype
    if sec.bnb_4bit_quant_type:
        extra["bnb_4bit_quant_type"] = sec.bnb_4bit_quant_type
    if sec.bnb_4bit_use_double_quant is not None:
        extra["bnb_4bit_use_double_quant"] = sec.bnb_4bit_use_double_quant
    return factory(
        load_in_4bit=bool(sec.load_in_4bit), load_in_8bit=bool(sec.load_in_8bit), **extra
    )


def _apply_lora(model: Any, config: ExperimentConfig) -> Any:
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise EngineError("lora needs the peft package", "pip install peft") from exc
    assert config.lora is not None
    source = config.lora.adapter_path or config.lora.adapter_id
    model = PeftModel.from_pretrained(model, source)
    return model.merge_and_unload() if config.lora.merge_weights else model


def environment() -> dict[str, Any]:
    """Versions and device facts recorded with every result of this engine."""
    torch = _import_torch()
    import transformers

    env: dict[str, Any] = {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    with contextlib.suppress(Exception):
        if torch.cuda.is_available():
            env["cuda"] = torch.version.cuda
            env["gpu"] = torch.cuda.get_device_name(0)
    return env


def load_error(model: str, exc: BaseException) -> EngineError:
    """A load that raised, named as one, with its cause and the fix it points to: a class the
    installed transformers does not have (a newer model, or a typo in its config) names the
    version installed."""
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)
    first = first.split(". ")[0][:200]  # the cause; transformers goes on for a paragraph
    fix = "check the model's files and its config.json / tokenizer_config.json"
    newer = ("does not exist", "not currently imported", "Unrecognized", "does not recognize")
    if any(phrase in first for phrase in newer):
        try:
            from importlib.metadata import version

            have = version("transformers")
        except Exception:  # transformers is imported above; metadata may still be missing
            have = "unknown"
        fix = (
            f"the model needs a class transformers {have} does not have: upgrade transformers "
            "(pip install -U transformers), or fix the class name in the model's config"
        )
    return EngineError(f"cannot load model {model!r}: {type(exc).__name__}: {first}", fix)
