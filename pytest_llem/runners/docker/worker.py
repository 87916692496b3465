"""The warm worker's protocol: files in the persistent container's exchange mount.

A persistent container's main process is ``python -m pytest_llem.runners.entrypoint --serve DIR``: a
worker that keeps the loaded engine (``engines.cache.ModelCache``) across items. The host
drives it with files only, for the reasons the attach-free container design gives
(docs/architecture.md): no stream or exec session stays open while an item runs.

- The host writes one ``WorkerRequest`` to ``DIR/request.json`` (a temp file renamed into
  place, so the worker never reads half a file) only after the previous item's response.
- The worker claims it (reads, then deletes it), runs the item through the same
  ``runners.local.execute`` path as every other runner, writes ``{hash}_result.json`` or
  ``{hash}_error.json`` into the item's exchange directory, and last a ``WorkerResponse`` at
  the request's ``response_file``: its appearance is the item's end.
- A worker that dies takes the container with it (it is the container's main process): the
  host sees the container stop and reads its exit code. A worker that hangs never answers:
  the item's timeout kills the container. Either way the next item starts a new container.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from pydantic import BaseModel, ConfigDict

WORKER_PROTOCOL_VERSION = 1
REQUEST_NAME = "request.json"


class WorkerRequest(BaseModel):
    """One item for the worker (paths as the container sees them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = WORKER_PROTOCOL_VERSION
    seq: int
    config_path: str
    log_file: str
    response_file: str
    token_file: str | None = None


class WorkerResponse(BaseModel):
    """The worker's answer, written after the item's result or error file.

    ``exit_code`` means what a one-shot entrypoint's exit code means: 0 with a result file,
    1 with an error file. ``loads`` and ``load_s`` are the worker's totals since it started.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = WORKER_PROTOCOL_VERSION
    seq: int
    exit_code: int
    model_cached: bool | None = None
    model_load_s: float | None = None
    loads: int = 0
    load_s: float = 0.0
    pid: int = 0


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temp file beside ``path`` and rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def serve_command(python: str, inbox: str) -> list[str]:
    """The persistent container's command: the worker serving ``inbox`` (container path)."""
    return [python, "-m", "pytest_llem.runners.entrypoint", "--serve", inbox]
