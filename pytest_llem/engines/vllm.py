"""The vLLM engine (backend ``vllm``). vllm is imported here and only here, on first use.

One ``vllm.LLM`` per load configuration (the ``vllm.engine`` section, forwarded with nested
blocks intact), every request in one ``generate`` call (continuous batching does the
scheduling), greedy or sampled through ``SamplingParams``, or ``LLM.beam_search``.
"""

from __future__ import annotations

import contextlib
import gc
import os
import time
from pathlib import Path
from typing import Any

from pytest_llem.devices import GpuRef
from pytest_llem.engines.base import BatchResult, Completion, MemoryInfo, Request
from pytest_llem.engines.cuda import gpu_refs
from pytest_llem.engines.datasets import tokenized_requests
from pytest_llem.engines.models import resolve_model
from pytest_llem.engines.vllm_args import check_engine_keys, engine_arg_names
from pytest_llem.errors import EngineError
from pytest_llem.study.model import ExperimentConfig

INSTALL_HINT = 'pip install "pytest-llem[vllm]" on a CUDA machine, or run vllm in Docker'
_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}
# Study names of nested engine blocks -> vllm.LLM keyword arguments.
_RENAMES = {"attention": "attention_config"}


def _import() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise EngineError(f"backend vllm needs the vllm package ({exc})", INSTALL_HINT) from exc
    return vllm


def engine_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """``vllm.LLM`` keyword arguments from the study (model and tokenizer excluded)."""
    section = config.vllm_section.engine.model_dump(exclude_none=True)
    kwargs = {_RENAMES.get(k, k): v for k, v in section.items()}
    kwargs["dtype"] = _DTYPES[config.precision]
    kwargs["seed"] = config.random_seed
    kwargs.update(config.passthrough_kwargs or {})
    return kwargs


def load_key(config: ExperimentConfig) -> str:
    """Equal keys share one ``vllm.LLM`` (sampling settings do not enter)."""
    return f"{config.model}|{sorted(engine_kwargs(config).items(), key=lambda kv: kv[0])!r}"


class VLLMEngine:
    """A loaded ``vllm.LLM`` serving the measurement protocol."""

    def __init__(
        self, llm: Any, vllm: Any, config: ExperimentConfig, base_dir: Path | None
    ) -> None:
        self.llm = llm
        self.vllm = vllm
        self.base_dir = base_dir
        self.tokenizer = llm.get_tokenizer()
        parallel = config.vllm_section.engine
        self.n_devices = (parallel.tensor_parallel_size or 1) * (
            parallel.pipeline_parallel_size or 1
        )

    @classmethod
    def load(cls, config: ExperimentConfig, base_dir: Path | None = None) -> VLLMEngine:
        """Build the ``vllm.LLM`` (bad engine arguments are an EngineError, not a crash)."""
        vllm = _import()
        ref = resolve_model(config.model, base_dir)
        model = str(Path(ref.name_or_path) / ref.gguf_file) if ref.gguf_file else ref.name_or_path
        kwargs = engine_kwargs(config)
        # Undeclared keys are passed through; the installed vLLM is their schema.
        check_engine_keys(config.vllm_section.engine.model_extra or {}, engine_arg_names())
        attention = kwargs.get("attention_config", {}).get("backend")
        if attention:
            # Older vLLM releases read the attention backend from the environment only.
            os.environ.setdefault("VLLM_ATTENTION_BACKEND", str(attention))
        try:
            llm = vllm.LLM(model=model, **kwargs)
        except TypeError as exc:
            raise EngineError(
                f"vllm.LLM rejected the engine settings: {exc}",
                "check the vllm.engine keys against your vLLM version",
            ) from exc
        except (ValueError, RuntimeError, OSError) as exc:
            raise EngineError(f"vllm could not load {config.model!r}: {exc}", INSTALL_HINT) from exc
        return cls(llm, vllm, config, base_dir)

    # -- Engine protocol -------------------------------------------------------------------

    def requests(self, config: ExperimentConfig) -> list[Request]:
        """Tokenise ``config.n`` prompts with the model's tokenizer."""
        return tokenized_requests(self.tokenizer, config, self.base_dir)

    def batches(self, requests: list[Request], config: ExperimentConfig) -> list[list[Request]]:
        """One call with every request: vLLM's scheduler batches continuously."""
        return [requests]

    def sampling_params(self, config: ExperimentConfig) -> Any:
        """``SamplingParams`` from the decoder block and ``vllm.sampling``."""
        dec = config.decoder
        kwargs: dict[str, Any] = {
            "n": 1,
            "max_tokens": config.max_output_tokens,
            "temperature": dec.temperature if dec.sampling else 0.0,
        }
        if dec.sampling:
            kwargs["top_p"] = dec.top_p
            if dec.top_k is not None:
                kwargs["top_k"] = dec.top_k
            if dec.min_p is not None:
                kwargs["min_p"] = dec.min_p
        if dec.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = dec.repetition_penalty
        if dec.min_new_tokens is not None:
            kwargs["min_tokens"] = dec.min_new_tokens
        kwargs["seed"] = config.random_seed
        kwargs.update(config.vllm_section.sampling.model_dump(exclude_none=True))
        try:
            return self.vllm.SamplingParams(**kwargs)
        except (TypeError, ValueError) as exc:
            raise EngineError(
                f"vllm.SamplingParams rejected {kwargs}: {exc}",
                "check the decoder and vllm.sampling settings",
            ) from exc

    def generate(self, batch: list[Request], config: ExperimentConfig) -> BatchResult:
        """Generate every request; per-request timing from vLLM's metrics when it has them."""
        prompts = [{"prompt_token_ids": list(r.token_ids)} for r in batch]
        beam = config.vllm_section.beam_search
        start = time.perf_counter()
        try:
            if beam is not None:
                from vllm.sampling_params import BeamSearchParams

                params = BeamSearchParams(
                    beam_width=beam.beam_width,
                    max_tokens=beam.max_tokens or config.max_output_tokens,
                    length_penalty=beam.length_penalty,
                )
                outputs = self.llm.beam_search(prompts, params)
            else:
                outputs = self.llm.generate(prompts, self.sampling_params(config), use_tqdm=False)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise EngineError(f"vllm generate failed: {exc}", "check the vllm settings") from exc
        wall = time.perf_counter() - start
        if beam is not None:
            completions = [
                _beam_completion(r, o, wall) for r, o in zip(batch, outputs, strict=True)
            ]
        else:
            completions = [_completion(o, wall) for o in outputs]
        return BatchResult(completions=completions, wall_s=wall)

    def memory(self) -> MemoryInfo:
        """vLLM allocates in its worker processes: device memory comes from the sampler."""
        return MemoryInfo(peak_mb=None, model_mb=None)

    def devices(self) -> list[GpuRef]:
        """The first tensor x pipeline parallel CUDA devices, with UUIDs when torch has them."""
        return gpu_refs(range(self.n_devices))

    def close(self) -> None:
        """Tear the engine down and free its GPU memory (best effort across vLLM versions)."""
        self.llm = None
        with contextlib.suppress(Exception):
            from vllm.distributed.parallel_state import destroy_model_parallel

            destroy_model_parallel()
        gc.collect()
        with contextlib.suppress(Exception):
            import torch

            torch.cuda.empty_cache()


def _completion(output: Any, wall: float) -> Completion:
    first = output.outputs[0]
    metrics = getattr(output, "metrics", None)
    latency, ttft = wall, None
    if metrics is not None and getattr(metrics, "arrival_time", None) is not None:
        end = getattr(metrics, "finished_time", None) or getattr(metrics, "last_token_time", None)
        if end is not None:
            latency = end - metrics.arrival_time
        if getattr(metrics, "first_token_time", None) is not None:
            ttft = metrics.first_token_time - metrics.arrival_time
    return Completion(len(output.prompt_token_ids), len(first.token_ids), latency, ttft_s=ttft)


def _beam_completion(request: Request, output: Any, wall: float) -> Completion:
    best = output.sequences[0]
    # A beam sequence's tokens include the prompt.
    return Completion(
        len(request.token_ids), max(0, len(best.tokens) - len(request.token_ids)), wall
    )


def environment() -> dict[str, Any]:
    """vLLM and torch versions."""
    vllm = _import()
    env: dict[str, Any] = {"vllm": getattr(vllm, "__version__", "unknown")}
    with contextlib.suppress(ImportError):
        import torch

        env["torch"] = torch.__version__
    return env
