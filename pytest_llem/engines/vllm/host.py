"""vLLM on the host: the CPU KV-cache reservation, and the engine's own processes.

On CPU, vLLM's ``gpu_memory_utilization`` (default 0.92) reserves that share of a NUMA node's
memory, and refuses to start when that much is not free: on a shared 24 GiB machine the
default never starts. Unless the study (or ``VLLM_CPU_KVCACHE_SPACE``) says otherwise, the
engine gets an explicit ``kv_cache_memory_bytes`` sized from the configuration: enough for
``max_num_seqs`` sequences of ``max_model_len`` tokens of this model's KV cache, at least one
full sequence, at most a share of the memory available now.

The V1 engine runs the model in child processes (EngineCore, and its workers). They are found
as the processes that appeared under this one while the engine loaded, measured for memory,
and waited for at shutdown so that the next engine starts only once they are gone.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llem.engines.vllm import spec
from pytest_llem.errors import EngineError
from pytest_llem.study.experiment import ExperimentConfig

MIB = 1 << 20
GIB = 1 << 30
KV_CAP_BYTES = 2 * GIB  # at most this much KV cache unless the study asks for more
KV_CAP_SHARE = 0.2  # ... and at most this share of the memory available at load
DEFAULT_MAX_NUM_SEQS = 256  # vLLM's offline default when the study leaves it unset
CPU_BLOCK_TOKENS = 128  # vLLM's CPU block size default
_DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}


@dataclass(frozen=True)
class KvPlan:
    """The KV-cache reservation chosen for a CPU engine, and why."""

    bytes: int | None
    source: str


def _available_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _model_shape(model_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None
    text = data.get("text_config", data)  # multimodal configs nest the language model
    return text if isinstance(text, dict) else None


def kv_bytes_per_token(shape: dict[str, Any], precision: str, kv_dtype: str | None) -> int | None:
    """K and V of every layer for one token, from a Hugging Face config."""
    try:
        layers = int(shape["num_hidden_layers"])
        heads = int(shape["num_attention_heads"])
        kv_heads = int(shape.get("num_key_value_heads") or heads)
        head_dim = int(shape.get("head_dim") or int(shape["hidden_size"]) // heads)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    width = 1 if kv_dtype and kv_dtype.startswith("fp8") else _DTYPE_BYTES[precision]
    return 2 * layers * kv_heads * head_dim * width


def plan_kv_cache(
    config: ExperimentConfig,
    model_dir: Path | None,
    environ: dict[str, str] | None = None,
    available: int | None = None,
) -> KvPlan:
    """The CPU KV-cache reservation for ``config`` (None bytes: leave it to vLLM)."""
    env = os.environ if environ is None else environ
    engine = spec.section(config).engine
    if engine.kv_cache_memory_bytes is not None:
        return KvPlan(engine.kv_cache_memory_bytes, "study: vllm.engine.kv_cache_memory_bytes")
    if env.get("VLLM_CPU_KVCACHE_SPACE"):
        return KvPlan(None, f"environment: VLLM_CPU_KVCACHE_SPACE={env['VLLM_CPU_KVCACHE_SPACE']}")
    if engine.gpu_memory_utilization is not None:
        return KvPlan(
            None,
            f"study: gpu_memory_utilization {engine.gpu_memory_utilization} "
            "of the NUMA node's memory",
        )
    free = available if available is not None else _available_bytes()
    cap = KV_CAP_BYTES if free is None else min(KV_CAP_BYTES, int(free * KV_CAP_SHARE))
    cap_text = (
        f"{cap / GIB:.2f} GiB (min of {KV_CAP_BYTES // GIB} GiB, {KV_CAP_SHARE:.0%} of available)"
    )
    shape = _model_shape(model_dir) if model_dir is not None else None
    per_token = (
        kv_bytes_per_token(shape, config.precision, engine.kv_cache_dtype) if shape else None
    )
    if shape is None or per_token is None:
        return KvPlan(cap, f"default share: {cap_text}; the model's shape is unknown")
    explicit = engine.max_model_len is not None
    max_len = engine.max_model_len or int(shape.get("max_position_embeddings") or 2048)
    seqs = engine.max_num_seqs or DEFAULT_MAX_NUM_SEQS
    seq_tokens = (math.ceil(max_len / CPU_BLOCK_TOKENS) + 1) * CPU_BLOCK_TOKENS
    need = seqs * seq_tokens * per_token
    floor = seq_tokens * per_token  # vLLM refuses a cache that cannot hold one full sequence
    _check_one_sequence_fits(floor, cap, free, max_len, explicit)
    chosen = math.ceil(max(floor, min(need, cap)) / MIB) * MIB
    how = (
        f"sized from the config: {seqs} seqs x {seq_tokens} tokens x {per_token} B/token"
        f" = {need / MIB:.1f} MiB"
    )
    if floor > cap:
        how += (
            f"; applied {chosen / GIB:.2f} GiB, one full sequence of max_model_len {max_len}, "
            f"above the cap of {cap_text}"
        )
    elif need > cap:
        how += f"; applied {chosen / GIB:.2f} GiB: capped at {cap_text}"
    else:
        how += f"; applied {chosen / MIB:.1f} MiB"
    return KvPlan(chosen, how)


def _check_one_sequence_fits(
    floor: int, cap: int, free: int | None, max_len: int, explicit: bool
) -> None:
    """A KV cache for one full sequence must fit: else say which setting decides its size.

    Without ``max_model_len`` vLLM uses the model's whole context (131072 tokens for Llama
    3.1), whose one-sequence cache can be many GiB: that is refused here, never silently
    reserved. With ``max_model_len`` set, the floor is applied unless the machine lacks it.
    """
    fix = (
        "set vllm.engine.max_model_len to the longest sequence the study needs (e.g. "
        "max_input_tokens + max_output_tokens), or vllm.engine.kv_cache_memory_bytes"
    )
    if not explicit and floor > cap:
        raise EngineError(
            f"without vllm.engine.max_model_len, vLLM uses the model's full context of "
            f"{max_len} tokens, whose KV cache for one sequence ({floor / GIB:.2f} GiB) is "
            f"above the CPU KV-cache cap ({cap / GIB:.2f} GiB)",
            fix,
        )
    if free is not None and floor > free:
        raise EngineError(
            f"one sequence of max_model_len {max_len} needs {floor / GIB:.2f} GiB of KV cache; "
            f"{free / GIB:.2f} GiB of memory is available",
            fix,
        )


class EnvironmentScope:
    """Environment variables set for one engine's life, restored (or removed) afterwards.

    vLLM reads some settings from the environment: its worker processes at spawn (the
    attention backend in releases without ``attention_config``), the frontend at shutdown
    (the worker shutdown timeout). Left behind, they would configure the next engine too.
    """

    def __init__(self, values: dict[str, str]) -> None:
        self._saved = {name: os.environ.get(name) for name in values}
        os.environ.update(values)

    def restore(self) -> None:
        """Put back what the environment held before (idempotent)."""
        saved, self._saved = self._saved, {}
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class EngineProcesses:
    """The processes an engine started under this one (psutil: a vLLM dependency)."""

    def __init__(self) -> None:
        try:
            import psutil
        except ImportError:  # vLLM itself requires psutil; without it nothing is tracked
            psutil = None
        self._psutil: Any = psutil
        self._before: set[int] = set()
        if psutil is not None:
            self._before = {p.pid for p in psutil.Process().children(recursive=True)}
        self.procs: list[Any] = []

    def capture(self) -> None:
        """Remember the children that appeared since construction (the engine's)."""
        if self._psutil is None:
            return
        found = []
        for proc in self._psutil.Process().children(recursive=True):
            if proc.pid in self._before:
                continue
            try:
                cmdline = " ".join(proc.cmdline())
            except self._psutil.Error:
                continue
            # multiprocessing's resource tracker is shared by every later spawn, not the engine's.
            if "resource_tracker" not in cmdline:
                found.append(proc)
        self.procs = found

    @property
    def pids(self) -> list[int]:
        """Process ids of the engine's processes."""
        return [p.pid for p in self.procs]

    def peak_rss_mb(self) -> float | None:
        """Sum of the engine processes' peak resident memory since they started (VmHWM), MB.

        Not reset before a window: ``/proc/PID/clear_refs`` is refused in containers and
        sandboxes, and a sum of per-process peaks is not the peak of the sum anyway.
        """
        total = 0
        for proc in self.procs:
            try:
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total += int(line.split()[1]) * 1024
            except (OSError, ValueError, IndexError):
                return None
        return total / 1e6 if self.procs else None

    def wait_gone(self, timeout_s: float) -> list[int]:
        """Wait for the engine processes to exit; kill stragglers. Returns those killed."""
        if self._psutil is None or not self.procs:
            return []
        _, alive = self._psutil.wait_procs(self.procs, timeout=timeout_s)
        for proc in alive:
            with contextlib.suppress(self._psutil.Error):
                proc.kill()
        self._psutil.wait_procs(alive, timeout=timeout_s)
        return [p.pid for p in alive]
