"""One server per worker for serving items, kept warm across items that load alike.

As the model cache does for offline items: the server of a load key is started once and
reused while the next item has the same key; another key stops it first (one server holds
the devices at a time). A server found dead between items is replaced by a fresh one, and
the item says so. An ``endpoint`` is someone else's server: it is only checked, never started
or stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_llem.engines import loading
from pytest_llem.engines.model_ref import resolve_model
from pytest_llem.serving.process import ServerError, ServerProcess, free_port
from pytest_llem.serving.ready import health
from pytest_llem.study.experiment import ExperimentConfig


@dataclass(frozen=True)
class Served:
    """A server an item can load: where it answers and what it serves.

    ``process`` is None for an endpoint (someone else's server); ``start_s`` is the time it
    took to start and answer (None when reused or not ours); ``note`` says why it was
    replaced, when it was.
    """

    base_url: str
    model: str
    process: ServerProcess | None = None
    cached: bool = False
    start_s: float | None = None
    note: str | None = None

    @property
    def log_path(self) -> Path | None:
        """The server's log, when it is ours."""
        return self.process.log_path if self.process is not None else None


def serve_key(config: ExperimentConfig) -> str:
    """Items with equal keys share one server: the engine's load key and the backend's whole
    section (a server's command line may use any of it), never the load profile."""
    section = config.section().model_dump_json()
    served = config.serve.served_model if config.serve is not None else None
    return f"serve|{loading.load_key(config)}|{section}|{served}"


class ServerCache:
    """The worker's running server, by load key."""

    def __init__(self, port: Callable[[], int] = free_port) -> None:
        self._port = port
        self._current: tuple[str, Served] | None = None
        self.starts = 0
        self.start_s = 0.0  # seconds spent starting servers

    def get(self, config: ExperimentConfig, base_dir: Path | None, log_dir: Path) -> Served:
        """The server for ``config``: the endpoint, the running one, or a new one."""
        serve = config.serve
        assert serve is not None, "serving items only"
        if serve.endpoint is not None:
            return _endpoint(config)
        key = f"{base_dir}|{serve_key(config)}"
        note = None
        if self._current is not None and self._current[0] == key:
            served = self._current[1]
            assert served.process is not None
            if served.process.alive():
                return Served(served.base_url, served.model, served.process, cached=True)
            note = str(served.process.died("between items")).splitlines()[0]
        self.clear()
        served = self._start(config, base_dir, log_dir, note)
        self._current = (key, served)
        return served

    def _start(
        self, config: ExperimentConfig, base_dir: Path | None, log_dir: Path, note: str | None
    ) -> Served:
        launcher = config.backend_spec.server_launcher()
        assert launcher is not None, "ExperimentConfig refuses serve without a server"
        port = self._port()
        launch = launcher(config, base_dir, port)
        name = f"{config.backend}-{time.strftime('%Y%m%dT%H%M%S')}-{port}.log"
        process = ServerProcess(launch, port, log_dir / name)
        process.start()
        try:
            assert config.serve is not None
            waited = process.wait_ready(config.serve.ready_timeout_s)
        except BaseException:
            process.stop()
            raise
        self.starts += 1
        self.start_s += waited
        return Served(process.base_url, launch.served_model, process, False, waited, note)

    def evict(self) -> None:
        """Forget the running server after an item it failed (stopped, so the next item of
        the same key starts a fresh one)."""
        self.clear()

    def clear(self) -> None:
        """Stop and reap the running server, if any."""
        if self._current is not None:
            _, served = self._current
            self._current = None
            if served.process is not None:
                served.process.stop()


def _endpoint(config: ExperimentConfig) -> Served:
    serve = config.serve
    assert serve is not None
    assert serve.endpoint is not None
    problem = health(serve.endpoint, timeout_s=10.0)
    if problem is not None:
        raise ServerError(
            f"serve.endpoint {serve.endpoint} does not answer: {problem}",
            fix="start the server first, or fix serve.endpoint (the OpenAI API root, e.g. "
            "http://127.0.0.1:8000/v1)",
        )
    return Served(serve.endpoint, serve.served_model or config.model)


def serving_prompts(config: ExperimentConfig, base_dir: Path | None) -> list[Any]:
    """The item's prompts: token ids through the model's tokenizer where it loads here (the
    inputs an offline item of the same config gets, truncated to ``max_input_tokens``);
    else the dataset's texts (an endpoint serving a model this machine does not have)."""
    from pytest_llem.engines.datasets import (
        DatasetError,
        ordered,
        read_jsonl_records,
        resolve_source,
        take,
        tokenized_requests,
    )

    tokenizer = _tokenizer(config, base_dir)
    if tokenizer is not None:
        return [r.token_ids for r in tokenized_requests(tokenizer, config, base_dir)]
    source = resolve_source(config.dataset, base_dir)
    if source is None:
        raise DatasetError(
            f"dataset synthetic needs the tokenizer of {config.model!r}, which does not load here",
            "use a prompt dataset (dataset: prompts-en, or a .jsonl file), or a model id "
            "this machine has",
        )
    records = read_jsonl_records(source, config.dataset.column)
    return take(ordered(records, config.dataset_order, config.random_seed), config.n)


def _tokenizer(config: ExperimentConfig, base_dir: Path | None) -> Any | None:
    if not config.backend_spec.hub_models:
        return None
    try:
        ref = resolve_model(config.model, base_dir)
        from transformers import AutoTokenizer
    except Exception:  # an endpoint's own model name, or no transformers: texts instead
        return None
    kwargs: dict[str, Any] = {"gguf_file": ref.gguf_file} if ref.gguf_file else {}
    try:
        return AutoTokenizer.from_pretrained(ref.name_or_path, **kwargs)
    except Exception:  # not a model this machine has (offline): texts instead
        return None
