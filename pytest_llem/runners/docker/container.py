"""What ephemeral and persistent containers share: options, mounts, env, GPU requests,
reading the exchange files back, and streaming the entrypoint's progress lines."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pytest_llem.engines.models import resolve_model
from pytest_llem.measure.protocol import Progress
from pytest_llem.results import Measurement
from pytest_llem.runners.base import RunSpec
from pytest_llem.runners.docker.errors import DockerError, from_exit
from pytest_llem.runners.docker.exchange import ExchangeDir
from pytest_llem.study.model import ExperimentConfig

Strategy = Literal["ephemeral", "persistent"]
CONTAINER_HF_HOME = "/root/.cache/huggingface"
LABEL = "io.pytest-llem"


@dataclass(frozen=True)
class DockerOptions:
    """Container settings resolved from the command line and ini."""

    strategy: Strategy = "ephemeral"
    timeout_s: float | None = None
    hf_cache: str | None = None
    volumes: tuple[str, ...] = ()
    python: str = "python"
    shm_size: str = "8g"
    auto_teardown: bool = True
    warmup_delay_s: float = 0.0
    max_restarts: int = 3
    gpu_memory_threshold_mb: float = 1024.0
    env: dict[str, str] = field(default_factory=dict)


def default_timeout_s(config: ExperimentConfig) -> float:
    """A generous bound from the work: start-up, thermal wait, window, and generation."""
    generation = 0.1 * config.n * config.max_output_tokens
    return 600.0 + config.thermal.max_s + 2 * config.window.min_duration_s + generation


def default_hf_cache() -> str | None:
    """The host's Hugging Face cache, when it exists (models are not re-downloaded per item)."""
    home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    return home if Path(home).is_dir() else None


def parse_volume(text: str) -> tuple[str, dict[str, str]]:
    """``host:container[:ro|rw]`` -> (host, {"bind": container, "mode": mode}).

    Raises:
        ValueError: naming the expected form.
    """
    parts = text.split(":")
    if len(parts) == 1:
        parts = [parts[0], parts[0], "ro"]
    if len(parts) == 2:
        parts.append("ro")
    host, bind, mode = parts[0], parts[1], parts[2]
    if (
        len(parts) != 3
        or not host.startswith("/")
        or not bind.startswith("/")
        or mode not in ("ro", "rw")
    ):
        raise ValueError(f"volume {text!r}: expected /host/path[:/container/path][:ro|rw]")
    return host, {"bind": bind, "mode": mode}


def mounts_for(spec: RunSpec, opts: DockerOptions) -> dict[str, dict[str, str]]:
    """Read-only mounts an item needs: its study directory, a local model, the HF cache."""
    out: dict[str, dict[str, str]] = {}
    base = Path(spec.base_dir) if spec.base_dir else None
    if base is not None:
        out[str(base)] = {"bind": str(base), "mode": "ro"}
    try:
        ref = resolve_model(spec.config.model, base)
    except Exception:  # an unresolvable alias fails inside, with its own message
        ref = None
    if ref is not None and Path(ref.name_or_path).exists():
        model_dir = str(Path(ref.name_or_path).resolve())
        if base is None or not model_dir.startswith(str(base) + os.sep):
            out[model_dir] = {"bind": model_dir, "mode": "ro"}
    if opts.hf_cache:
        # rw: a model missing from the cache is downloaded once and kept for later items.
        out[opts.hf_cache] = {"bind": CONTAINER_HF_HOME, "mode": "rw"}
    for volume in opts.volumes:
        host, bind = parse_volume(volume)
        out[host] = bind
    return out


def environment(spec: RunSpec, opts: DockerOptions) -> dict[str, str]:
    """Environment for the container (never a token: that travels as a file)."""
    env = {"HF_HOME": CONTAINER_HF_HOME, "PYTHONUNBUFFERED": "1", **opts.env}
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "CUDA_DEVICE_ORDER"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def device_requests(config: ExperimentConfig) -> list[Any]:
    """GPU request for cuda points: the worker's pinned GPU, else all GPUs."""
    if config.device != "cuda":
        return []
    from docker.types import DeviceRequest

    pinned = os.environ.get("CUDA_VISIBLE_DEVICES")
    if pinned:
        ids = [d.strip() for d in pinned.split(",") if d.strip()]
        return [DeviceRequest(device_ids=ids, capabilities=[["gpu"]])]
    return [DeviceRequest(count=-1, capabilities=[["gpu"]])]


def container_spec(spec: RunSpec, exchange: ExchangeDir) -> RunSpec:
    """The RunSpec as the container sees it (timeseries written into the exchange dir)."""
    if spec.timeseries_file is None:
        return spec
    return spec.model_copy(
        update={"timeseries_file": exchange.container_path(f"{exchange.key}_timeseries.jsonl")}
    )


def collect(
    exchange: ExchangeDir, spec: RunSpec, exit_code: int, oom_killed: bool, output: str
) -> Measurement:
    """The measurement the container wrote, or the translated error (exchange dir kept)."""
    measurement, failure = exchange.read()
    exchange.remove_token()
    if exit_code == 0 and measurement is not None:
        if spec.timeseries_file and measurement.sampler and measurement.sampler.timeseries_file:
            inside = exchange.path / f"{exchange.key}_timeseries.jsonl"
            if inside.is_file():
                Path(spec.timeseries_file).parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(inside), spec.timeseries_file)
            sampler = measurement.sampler.model_copy(
                update={"timeseries_file": spec.timeseries_file}
            )
            measurement = measurement.model_copy(update={"sampler": sampler})
        exchange.cleanup()
        return measurement
    err = from_exit(exit_code, oom_killed, output, failure.model_dump() if failure else None)
    raise keep(err, exchange)


def keep(err: DockerError, exchange: ExchangeDir) -> DockerError:
    """Say where the kept exchange directory is."""
    err.message += f"\n  exchange dir kept for debugging: {exchange.path}"
    return err


class ProgressPump:
    """Reads a container's output on a thread; ``[llem] phase detail`` lines drive progress."""

    def __init__(self, chunks: Iterable[bytes], progress: Progress) -> None:
        self.lines: list[str] = []
        self._chunks = chunks
        self._progress = progress
        self.thread = threading.Thread(target=self._run, name="llem-container-output", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        buffer = ""
        try:
            for chunk in self._chunks:
                buffer += chunk.decode("utf-8", errors="replace")
                *complete, buffer = buffer.split("\n")
                for line in complete:
                    self._line(line)
        except Exception:  # the stream ends abruptly when a container is killed
            pass
        if buffer:
            self._line(buffer)

    def _line(self, line: str) -> None:
        self.lines.append(line)
        if line.startswith("[llem] "):
            phase, _, detail = line[7:].partition(" ")
            self._progress(phase, detail)

    def text(self, wait_s: float = 5.0) -> str:
        """Everything read so far (waits briefly for the stream to end)."""
        self.thread.join(timeout=wait_s)
        return "\n".join(self.lines)


def labels(spec: RunSpec) -> dict[str, str]:
    """Labels that let a user (and the teardown) find pytest-llem's containers."""
    return {LABEL: "1", f"{LABEL}.point": spec.point_id, f"{LABEL}.config-hash": spec.config_hash}


def command(opts: DockerOptions) -> list[str]:
    """The entrypoint command."""
    return [opts.python, "-m", "pytest_llem.entrypoint"]


Clock = Callable[[], float]
