"""Container entrypoint: ``python -m pytest_llem.runners.entrypoint [--serve DIR]``.

One-shot (ephemeral containers, and persistent ones with ``llem_persistent_worker = false``):
reads the RunSpec at ``LLEM_CONFIG_PATH``, runs the same library path as the local runner
(``runners.local.execute``), and writes ``{hash}_result.json`` or ``{hash}_error.json``
atomically next to it. Exit code 0 with a result, 1 with an error file.

``--serve DIR`` (persistent containers): a worker that takes items one after another from
``DIR/request.json`` and keeps the loaded engine while the load key stays the same (the
protocol is in ``runners/docker/worker.py``).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_llem.results.records import write_json_atomic

if TYPE_CHECKING:
    from pytest_llem.engines.cache import ModelCache
    from pytest_llem.engines.servers import ServerCache
    from pytest_llem.results.records import Measurement


def _load_token(token_file: str | None) -> None:
    # The host passes the token as a file, so it never appears in `docker inspect`.
    if token_file:
        path = Path(token_file)
        try:
            os.environ["HF_TOKEN"] = path.read_text().strip()
        finally:
            path.unlink(missing_ok=True)


class _Log:
    """stderr, plus the exchange-dir log file the host follows for progress and output."""

    def __init__(self, path: str | None) -> None:
        self.file = open(path, "a", buffering=1, encoding="utf-8") if path else None  # noqa: SIM115

    def write(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)
        if self.file is not None:
            self.file.write(text + "\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def run_item(
    config_path: Path,
    log_path: str | None,
    token_file: str | None,
    cache: ModelCache,
    servers: ServerCache | None = None,
) -> tuple[int, Measurement | None]:
    """Run one item; never raise (the host reads the files). Returns (exit code, measurement).

    ``servers``: the warm worker's serving servers, kept across its items (None: a serving
    item starts its server for itself).
    """
    log = _Log(log_path)
    out_dir = config_path.parent
    key = config_path.name.removesuffix("_config.json")
    try:
        _load_token(token_file)
        from pytest_llem.runners.local import execute
        from pytest_llem.runners.run_spec import RunSpec

        spec = RunSpec.model_validate_json(config_path.read_text(encoding="utf-8"))
        # A server's log goes into the exchange directory, which the host sees (and keeps
        # when the item fails): the host's results directory is not mounted here.
        spec = spec.model_copy(update={"server_log_dir": str(out_dir / "servers")})

        def progress(phase: str, detail: str) -> None:
            log.write(f"[llem] {phase} {detail}")

        measurement = execute(spec, cache, progress, servers)
        write_json_atomic(out_dir / f"{key}_result.json", measurement.model_dump(mode="json"))
        return 0, measurement
    except BaseException as exc:  # every failure must reach the host as a file
        from pytest_llem.runners.docker.exchange import error_payload

        tb = traceback.format_exc()
        log.write(tb)
        try:
            write_json_atomic(out_dir / f"{key}_error.json", error_payload(exc, tb))
        except OSError:
            return 3, None
        return 1, None
    finally:
        log.close()


def main() -> int:
    """One item from the environment (one-shot mode)."""
    from pytest_llem.engines.cache import ModelCache

    config_path = Path(os.environ.get("LLEM_CONFIG_PATH", ""))
    token_file = os.environ.pop("LLEM_TOKEN_FILE", None)
    cache = ModelCache()
    try:
        code, _ = run_item(config_path, os.environ.get("LLEM_LOG_FILE"), token_file, cache)
    finally:
        # Shut the engine down before the interpreter does: vLLM's engine processes then end
        # cleanly instead of being reported as dying unexpectedly.
        cache.clear()
    return code


def handle(text: str, cache: ModelCache, servers: ServerCache | None = None) -> Path | None:
    """Run the item of one request and write its response; return the response path."""
    from pytest_llem.runners.docker.worker import WorkerRequest, WorkerResponse, write_atomic

    request = WorkerRequest.model_validate_json(text)
    code, measurement = run_item(
        Path(request.config_path), request.log_file, request.token_file, cache, servers
    )
    if code != 0:
        # An engine that raised mid-item (CUDA OOM, a crashed engine core) may be unusable:
        # the next item loads afresh rather than inherit its state; so does a server.
        cache.clear()
        if servers is not None:
            servers.clear()
    response = WorkerResponse(
        seq=request.seq,
        exit_code=code,
        model_cached=measurement.model_cached if measurement else None,
        model_load_s=measurement.model_load_s if measurement else None,
        loads=cache.loads,
        load_s=cache.load_s,
        pid=os.getpid(),
    )
    path = Path(request.response_file)
    write_atomic(path, response.model_dump_json())
    return path


def serve(
    inbox: Path,
    cache: ModelCache | None = None,
    poll_s: float = 0.05,
    max_requests: int | None = None,
) -> int:
    """Take requests from ``inbox`` one after another, keeping the engine loaded between them.

    A request the worker cannot parse (another pytest-llem version on the host) ends the
    worker with exit code 2: the host sees the container stop and reports it.
    """
    from pydantic import ValidationError

    from pytest_llem.engines.cache import ModelCache
    from pytest_llem.engines.servers import ServerCache
    from pytest_llem.runners.docker.worker import REQUEST_NAME

    cache = cache or ModelCache()
    servers = ServerCache()  # a serving item's server stays up for the next one
    request = inbox / REQUEST_NAME
    handled = 0
    try:
        while max_requests is None or handled < max_requests:
            try:
                text = request.read_text(encoding="utf-8")
            except FileNotFoundError:
                time.sleep(poll_s)  # a stat every 50 ms: negligible next to an item
                continue
            request.unlink()  # claimed: a restarted worker never runs it twice
            try:
                handle(text, cache, servers)
            except (ValidationError, ValueError) as exc:
                print(f"[llem] worker cannot read its request: {exc}", file=sys.stderr, flush=True)
                return 2
            handled += 1
    finally:
        cache.clear()
        servers.clear()
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        sys.exit(serve(Path(sys.argv[2])))
    sys.exit(main())
