"""The exchange directory: how a RunSpec gets into a container and a result comes out.

``llem-*`` temp dir, bind-mounted at ``/run/llem``: ``{hash}_config.json`` in,
``{hash}_result.json`` or ``{hash}_error.json`` out. Kept on failure (for debugging), removed
on success. A token travels as a 0600 file the entrypoint reads and deletes, never as an
environment variable (which ``docker inspect`` would print).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from pytest_llem.results.records import Measurement
from pytest_llem.runners.run_spec import RunSpec

MOUNT = "/run/llem"
TOKEN_ENV_NAMES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


class ContainerFailure(BaseModel):
    """What the entrypoint writes when the experiment raised."""

    model_config = ConfigDict(extra="forbid")

    type: str
    message: str
    fix: str | None = None
    traceback: str = ""


class ExchangeDir:
    """One item's exchange directory on the host."""

    def __init__(
        self,
        spec: RunSpec,
        root: Path | None = None,
        nested: bool = False,
        host_paths: bool = False,
    ) -> None:
        self.spec = spec
        self.path = Path(tempfile.mkdtemp(prefix="llem-", dir=root))
        os.chmod(self.path, 0o755)  # the container's user must be able to enter it
        self.key = spec.config_hash
        # Ephemeral containers mount this directory at MOUNT; a persistent container mounts
        # the parent once, so each item's directory is a subdirectory there; a worker on this
        # machine (the python: runner) sees the host's paths.
        if host_paths:
            self.container_base = str(self.path)
        else:
            self.container_base = f"{MOUNT}/{self.path.name}" if nested else MOUNT

    def container_path(self, name: str) -> str:
        """Where ``name`` is inside the container."""
        return f"{self.container_base}/{name}"

    @property
    def config_name(self) -> str:
        return f"{self.key}_config.json"

    def write(self, spec: RunSpec, env: dict[str, str] | None = None) -> dict[str, str]:
        """Write the config (and a token file when a token is set); return container env."""
        (self.path / self.config_name).write_text(spec.model_dump_json(), encoding="utf-8")
        out = {
            "LLEM_CONFIG_PATH": self.container_path(self.config_name),
            "LLEM_LOG_FILE": self.container_path(f"{self.key}_log.txt"),
        }
        source = os.environ if env is None else env
        token = next((source[n] for n in TOKEN_ENV_NAMES if source.get(n)), None)
        if token:
            token_file = self.path / f"{self.key}_token"
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(token)
            out["LLEM_TOKEN_FILE"] = self.container_path(token_file.name)
        return out

    def read(self) -> tuple[Measurement | None, ContainerFailure | None]:
        """The result, or the error, the container left (both None when it wrote nothing)."""
        result = self.path / f"{self.key}_result.json"
        error = self.path / f"{self.key}_error.json"
        try:
            if result.is_file():
                return Measurement.model_validate_json(result.read_text(encoding="utf-8")), None
            if error.is_file():
                return None, ContainerFailure.model_validate_json(error.read_text(encoding="utf-8"))
        except (ValidationError, ValueError) as exc:
            return None, ContainerFailure(
                type="CorruptExchangeFile",
                message=f"unreadable file in {self.path}: {exc}",
                fix="the container image and the host run different pytest-llem versions?",
            )
        return None, None

    @property
    def log_file(self) -> Path:
        """The entrypoint's log (progress lines, traceback) on the host."""
        return self.path / f"{self.key}_log.txt"

    def remove_token(self) -> None:
        """Delete the token file if the entrypoint did not."""
        (self.path / f"{self.key}_token").unlink(missing_ok=True)

    def cleanup(self) -> None:
        """Remove the directory (on success)."""
        shutil.rmtree(self.path, ignore_errors=True)


def error_payload(exc: BaseException, tb: str) -> dict[str, Any]:
    """The error file's content for an exception raised in the container."""
    return ContainerFailure(
        type=type(exc).__name__,
        message=str(getattr(exc, "message", exc)),
        fix=getattr(exc, "fix", None),
        traceback=tb,
    ).model_dump()


def dumps(data: Any) -> str:
    """Compact JSON."""
    return json.dumps(data, separators=(",", ":"))
