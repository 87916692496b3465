"""A server process of our own: started on a free loopback port, its log kept, reaped always.

Engine-agnostic: a ``Launch`` is a command line, its environment and the model name it will
serve; the backend builds it (``BackendSpec.server``). The process gets a process group of
its own, so stopping it stops its children too (vLLM's EngineCore and workers), and on Linux
it dies with the process that started it (``PR_SET_PDEATHSIG``), so not even a killed pytest
leaves a server listening.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from pytest_llem.serving.errors import ServingError
from pytest_llem.serving.ready import health

READY_POLL_S = 0.5
STOP_GRACE_S = 30.0
LOG_TAIL_LINES = 20


@dataclass(frozen=True)
class Launch:
    """How to start a server: its command, extra environment, and what it serves."""

    argv: tuple[str, ...]
    served_model: str
    env: Mapping[str, str] = field(default_factory=dict)
    api_path: str = "/v1"  # the OpenAI API root below http://host:port


class ServerError(ServingError):
    """A server that would not start, stopped answering, or died; names its log."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: a new session (its own process group, so the
    # whole tree is signalled at once), and SIGKILL when the parent goes (Linux only).
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class ServerProcess:
    """One running server: start, wait until ready, tell whether it lives, stop and reap."""

    def __init__(
        self,
        launch: Launch,
        port: int,
        log_path: Path,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.launch = launch
        self.port = port
        self.log_path = log_path
        self.clock = clock
        self.sleep = sleep
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def root(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI API root the client posts to."""
        return self.root + self.launch.api_path

    def start(self) -> None:
        """Start the command with its output appended to the log file."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"$ {' '.join(self.launch.argv)}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(  # the backend's command, no shell
            list(self.launch.argv),
            env={**os.environ, **self.launch.env},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # setsid and prctl only: no locks
        )

    def exit_code(self) -> int | None:
        """The exit status once the process is gone, None while it runs."""
        return None if self.proc is None else self.proc.poll()

    def alive(self) -> bool:
        """The process runs (it may still be starting, or hung)."""
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the server's log, for an error message."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def died(self, when: str) -> ServerError:
        """The error for a server found dead ``when`` (its exit status and last log lines)."""
        return ServerError(
            f"the server exited with status {self.exit_code()} {when}; its log: "
            f"{self.log_path}; last lines:\n{self.tail()}",
            fix="read the server's log above; the next item starts a fresh server",
        )

    def wait_ready(self, timeout_s: float) -> float:
        """Poll its health endpoint until it answers; seconds waited.

        Raises:
            ServerError: it exited first, or did not answer within ``timeout_s`` (both name
                the log and quote its last lines).
        """
        start = self.clock()
        while True:
            if not self.alive():
                raise self.died("before it was ready")
            reason = health(self.base_url, timeout_s=2.0)
            if reason is None:
                return self.clock() - start
            if self.clock() - start > timeout_s:
                raise ServerError(
                    f"the server did not answer {self.root}/health within {timeout_s:g} s "
                    f"({reason}); its log: {self.log_path}; last lines:\n{self.tail()}",
                    fix="raise serve.ready_timeout_s if it is still loading, or read the log",
                )
            self.sleep(READY_POLL_S)

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGTERM its process group, SIGKILL after ``grace_s``, reap; the exit status."""
        proc, self.proc = self.proc, None
        try:
            if proc is not None:
                return _terminate(proc, grace_s)
            return None
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None


def _terminate(proc: subprocess.Popen[bytes], grace_s: float) -> int | None:
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    # The group may outlive its leader (children that ignored SIGTERM): end them too.
    _signal_group(proc.pid, signal.SIGKILL)
    return proc.returncode


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
