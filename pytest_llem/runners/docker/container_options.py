"""Container settings, resolved from the command line and ini by ``settings/resolve.py``
(which imports this module: settings flow down, never up)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pytest_llem.results.redact import looks_secret
from pytest_llem.study.experiment import ExperimentConfig

Strategy = Literal["ephemeral", "persistent"]


@dataclass(frozen=True)
class DockerOptions:
    """Container settings resolved from the command line and ini."""

    strategy: Strategy = "ephemeral"
    timeout_s: float | None = None
    hf_cache: str | None = None
    volumes: tuple[str, ...] = ()
    python: str = ""  # empty: the interpreter of the image's CMD (images.entry_python)
    shm_size: str = "8g"
    auto_teardown: bool = True
    warmup_delay_s: float = 0.0
    max_restarts: int = 3
    gpu_memory_threshold_mb: float = 1024.0
    # A warm worker per persistent container (engine kept across items); False: one
    # entrypoint process per item, as ephemeral containers run it.
    worker: bool = True
    env: dict[str, str] = field(default_factory=dict)
    session_id: str = ""  # labels this run's containers (one id across xdist workers)


def default_timeout_s(config: ExperimentConfig) -> float:
    """A generous bound from the work: start-up, warmup until steady, window, generation."""
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


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def parse_env(line: str) -> tuple[str, str]:
    """``NAME=VALUE`` into its parts; a name that looks secret is refused (``docker inspect``
    shows a container's environment to anyone who can reach the daemon)."""
    name, sep, value = line.partition("=")
    name = name.strip()
    if not sep or not _ENV_NAME.match(name):
        raise ValueError(f"{line!r}: expected NAME=VALUE")
    if looks_secret(name):
        raise ValueError(
            f"{name} looks like a secret and would show in docker inspect; HF_TOKEN reaches "
            "containers as a 0600 file, and other secrets belong in the image or a mounted file"
        )
    return name, value
