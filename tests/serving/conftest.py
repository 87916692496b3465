"""The test server as a subprocess: started on a free loopback port, always reaped."""

from __future__ import annotations

import selectors
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_llem.serving.prometheus import parse

SERVER = Path(__file__).with_name("server.py")
START_TIMEOUT_S = 30.0


@dataclass
class TestServer:
    """A running test server."""

    __test__ = False  # not a test class, whatever its name

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def root(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI API root."""
        return f"{self.root}/v1"

    def gauges(self) -> dict[str, float]:
        """Its ``/metrics`` now, by metric name."""
        with urllib.request.urlopen(f"{self.root}/metrics", timeout=5) as response:
            text = response.read().decode()
        return {s.name: s.value for s in parse(text)}


def _read_port(proc: subprocess.Popen[bytes], log: Path) -> int:
    """The ``PORT <n>`` line the server prints once it listens."""
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                line = proc.stdout.readline().decode()
                if line.startswith("PORT "):
                    return int(line.split()[1])
                if not line and proc.poll() is not None:
                    break
    finally:
        selector.close()
    raise RuntimeError(f"the test server did not start: {log.read_text(errors='replace')[-2000:]}")


def reap(proc: subprocess.Popen[bytes]) -> None:
    """Terminate, wait, and kill if it does not go."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stdout is not None:
        proc.stdout.close()


def port_is_free(port: int) -> bool:
    """Nothing listens on the loopback port (binding it succeeds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def serving_server(tmp_path: Path) -> Iterator[Callable[..., TestServer]]:
    """Start test servers with ``server.py`` options; every one is reaped at teardown and its
    port checked free again."""
    started: list[TestServer] = []

    def start(*options: str) -> TestServer:
        log = tmp_path / f"server-{len(started)}.log"
        with log.open("wb") as err:
            proc = subprocess.Popen(
                [sys.executable, str(SERVER), *options], stdout=subprocess.PIPE, stderr=err
            )
        try:
            server = TestServer(proc, _read_port(proc, log), log)
        except BaseException:
            reap(proc)
            raise
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            reap(server.proc)
        for server in started:
            assert server.proc.returncode is not None
            assert port_is_free(server.port), f"port {server.port} still taken after reaping"
