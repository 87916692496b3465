"""What ephemeral and persistent containers share: options, mounts, env, GPU requests,
reading the exchange files back, and streaming the entrypoint's progress lines."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
    session_id: str = ""  # labels this run's containers (one id across xdist workers)


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
        # Bind the real directory at the path the host uses, symlinks included, so paths in
        # the config mean the same inside.
        out[str(base.resolve())] = {"bind": str(base), "mode": "ro"}
    model = Path(spec.config.model).expanduser()
    if not model.is_absolute() and base is not None:
        model = base / model
    if model.exists() and (base is None or not str(model).startswith(str(base) + os.sep)):
        target = model if model.is_dir() else model.parent
        out[str(target.resolve())] = {"bind": str(target), "mode": "ro"}
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


@contextlib.contextmanager
def dropped_on_interrupt(exchange: ExchangeDir) -> Iterator[None]:
    """Remove an item's exchange dir when the session is interrupted while it runs.

    A failed item keeps its dir and prints the path; an interrupted one has nothing to inspect
    and nobody would be told where it is, so it would only pile up in the temp dir.
    """
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        exchange.cleanup()
        raise


class LogTail:
    """Follows the entrypoint's log file in the exchange dir: ``[llem] phase detail`` lines
    drive progress, and the whole text is the failure's output. A file, not an attach stream,
    so no API connection stays open while an item runs."""

    def __init__(self, path: Path, progress: Progress) -> None:
        self.path = path
        self._progress = progress
        self._offset = 0
        self._partial = ""
        self.lines: list[str] = []

    def poll(self) -> None:
        """Read what was appended since the last poll."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return  # not written yet
        self._offset += len(data)
        *complete, self._partial = (self._partial + data.decode("utf-8", errors="replace")).split(
            "\n"
        )
        for line in complete:
            self.lines.append(line)
            if line.startswith("[llem] "):
                phase, _, detail = line[7:].partition(" ")
                self._progress(phase, detail)

    def text(self) -> str:
        """Everything logged so far."""
        self.poll()
        return "\n".join([*self.lines, self._partial]).strip()


def wait_until(
    done: Callable[[], bool], timeout_s: float, tail: LogTail, step_s: float = 0.25
) -> bool:
    """Poll ``done`` (and the log) until true or the timeout; True when done in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        tail.poll()
        if done():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step_s)


def run_labels(opts: DockerOptions) -> dict[str, str]:
    """Labels every container of this run carries (item containers and probes alike)."""
    return {LABEL: "1", f"{LABEL}.session": opts.session_id}


def labels(spec: RunSpec, opts: DockerOptions) -> dict[str, str]:
    """Labels that let a user (and the teardown) find pytest-llem's containers, per run."""
    return {
        **run_labels(opts),
        f"{LABEL}.point": spec.point_id,
        f"{LABEL}.config-hash": spec.config_hash,
    }


def command(opts: DockerOptions) -> list[str]:
    """The entrypoint command."""
    return [opts.python, "-m", "pytest_llem.entrypoint"]
