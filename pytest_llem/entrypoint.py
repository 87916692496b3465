"""Container entrypoint: ``python -m pytest_llem.entrypoint``.

Reads the RunSpec at ``LLEM_CONFIG_PATH``, runs the same library path as the local runner
(``runners.local.execute``), and writes ``{hash}_result.json`` or ``{hash}_error.json``
atomically next to it. Exit code 0 with a result, 1 with an error file.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

from pytest_llem.results import write_json_atomic


def _load_token() -> None:
    # The host passes the token as a file, so it never appears in `docker inspect`.
    token_file = os.environ.pop("LLEM_TOKEN_FILE", None)
    if token_file:
        path = Path(token_file)
        try:
            os.environ["HF_TOKEN"] = path.read_text().strip()
        finally:
            path.unlink(missing_ok=True)


class _Log:
    """stderr, plus the exchange-dir log file the host follows for progress and output."""

    def __init__(self) -> None:
        path = os.environ.get("LLEM_LOG_FILE")
        self.file = open(path, "a", buffering=1, encoding="utf-8") if path else None  # noqa: SIM115

    def write(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)
        if self.file is not None:
            self.file.write(text + "\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def main() -> int:
    """Run one item; never raise (the host reads the files)."""
    log = _Log()
    try:
        return _run(log)
    finally:
        log.close()


def _run(log: _Log) -> int:
    from pytest_llem.runners.docker.exchange import error_payload

    config_path = Path(os.environ.get("LLEM_CONFIG_PATH", ""))
    out_dir = config_path.parent
    key = config_path.name.removesuffix("_config.json")
    try:
        _load_token()
        from pytest_llem.engines.cache import ModelCache
        from pytest_llem.runners.base import RunSpec
        from pytest_llem.runners.local import execute

        spec = RunSpec.model_validate_json(config_path.read_text(encoding="utf-8"))

        def progress(phase: str, detail: str) -> None:
            log.write(f"[llem] {phase} {detail}")

        cache = ModelCache()
        try:
            measurement = execute(spec, cache, progress)
            write_json_atomic(out_dir / f"{key}_result.json", measurement.model_dump(mode="json"))
        finally:
            # Shut the engine down before the interpreter does: vLLM's engine processes
            # then end cleanly instead of being reported as dying unexpectedly.
            cache.clear()
        return 0
    except BaseException as exc:  # every failure must reach the host as a file
        tb = traceback.format_exc()
        log.write(tb)
        try:
            write_json_atomic(out_dir / f"{key}_error.json", error_payload(exc, tb))
        except OSError:
            return 3
        return 1


if __name__ == "__main__":
    sys.exit(main())
