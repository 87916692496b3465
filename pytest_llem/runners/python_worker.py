"""The ``python:INTERPRETER`` runner: the warm worker of persistent containers, started as a
subprocess of another Python environment on this machine (another vLLM, transformers or
pytest-llem), for comparing package versions without containers.

``INTERPRETER -m pytest_llem.runners.entrypoint --serve INBOX`` runs with the arm's
environment; the host drives it with the same files as a persistent container's worker
(``runners/docker/worker.py``): one request renamed into the inbox, the item's result or error
file in its exchange directory, then the response. The worker keeps its engine between items
while the load key stays the same. A worker that dies is restarted for the next item; one that
outlives the item's timeout, or whose item is interrupted (pytest-timeout's signal, Ctrl-C), is
killed with its whole process group, so nothing queues behind a hung worker.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from pytest_llem.errors import RunnerError
from pytest_llem.measure.phases import Progress
from pytest_llem.results.records import Measurement, RunnerInfo
from pytest_llem.runners.docker.container_options import default_timeout_s
from pytest_llem.runners.docker.exchange import ExchangeDir
from pytest_llem.runners.docker.outcome import LogTail, wait_until
from pytest_llem.runners.docker.worker import (
    REQUEST_NAME,
    WORKER_PROTOCOL_VERSION,
    WorkerRequest,
    WorkerResponse,
    write_atomic,
)
from pytest_llem.runners.run_spec import RUNSPEC_VERSION, RunSpec

# Run by the interpreter at pre-flight: what it has of pytest-llem and of the backend.
PROBE = """
import importlib.metadata as m, importlib.util as u, json, sys
def version(name):
    try:
        return m.version(name)
    except m.PackageNotFoundError:
        return None
out = {"python": sys.version.split()[0], "pytest_llem": version("pytest-llem"), "missing": []}
try:
    from pytest_llem.runners.docker.worker import WORKER_PROTOCOL_VERSION
    from pytest_llem.runners.run_spec import RUNSPEC_VERSION
    out["protocol"] = [WORKER_PROTOCOL_VERSION, RUNSPEC_VERSION]
except Exception as exc:
    out["protocol"] = None
    out["error"] = repr(exc)
out["missing"] = [p for p in sys.argv[1:] if u.find_spec(p) is None]
print(json.dumps(out))
"""


class WorkerProcessError(RunnerError):
    """The python runner's worker failed an item, died, or hung."""


def probe(interpreter: str, packages: tuple[str, ...], timeout_s: float = 120.0) -> str | None:
    """None when ``interpreter`` can run items here; otherwise the problem, in a line."""
    try:
        done = subprocess.run(
            [interpreter, "-c", PROBE, *packages],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"cannot run {interpreter}: {exc}"
    try:
        facts = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return f"{interpreter} did not answer the probe: {done.stderr.strip()[-300:]}"
    if facts.get("pytest_llem") is None or facts.get("protocol") is None:
        return f"{interpreter} (Python {facts.get('python')}) has no usable pytest-llem" + (
            f": {facts['error']}" if facts.get("error") else ""
        )
    if tuple(facts["protocol"]) != (WORKER_PROTOCOL_VERSION, RUNSPEC_VERSION):
        return (
            f"{interpreter} has pytest-llem {facts['pytest_llem']}, whose worker protocol "
            f"{facts['protocol']} differs from this one's "
            f"{[WORKER_PROTOCOL_VERSION, RUNSPEC_VERSION]}"
        )
    if facts["missing"]:
        return f"{interpreter} lacks the backend's packages {facts['missing']}"
    return None


class PythonRunner:
    """Items of one arm (or backend) in a warm worker under another interpreter."""

    def __init__(
        self,
        interpreter: str,
        source: str,
        env: Mapping[str, str],
        root: Path,
        timeout_s: float | None = None,
    ) -> None:
        self.interpreter = interpreter
        self.env = dict(env)
        self.root = root
        self.timeout_s = timeout_s
        self.info = RunnerInfo(type="python", source=source, strategy="persistent")
        self.process: subprocess.Popen[bytes] | None = None
        self.inbox: Path | None = None
        self.seq = 0
        self.restarts = 0
        self.notes: list[str] = []

    # -- lifecycle --------------------------------------------------------------------------

    def _start(self) -> None:
        self.inbox = Path(tempfile.mkdtemp(prefix="worker-", dir=self.root))
        log = (self.inbox / "worker.log").open("ab")
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        try:
            # A session of its own: a kill takes the worker's children (vLLM's engine
            # processes) with it, and a Ctrl-C at the terminal does not reach it twice.
            self.process = subprocess.Popen(
                [
                    self.interpreter,
                    "-m",
                    "pytest_llem.runners.entrypoint",
                    "--serve",
                    str(self.inbox),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            raise WorkerProcessError(
                f"cannot start {self.interpreter}: {exc}", "check the python: runner's path"
            ) from None
        finally:
            log.close()

    def _kill(self) -> None:
        """End the worker and every process it started (its process group)."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=30)
        if self.inbox is not None:
            (self.inbox / REQUEST_NAME).unlink(missing_ok=True)

    def alive(self) -> bool:
        """True while the worker process runs."""
        return self.process is not None and self.process.poll() is None

    def _worker_log(self) -> str:
        if self.inbox is None:
            return ""
        try:
            return (self.inbox / "worker.log").read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    # -- items ------------------------------------------------------------------------------

    def run(self, spec: RunSpec, progress: Progress) -> Measurement:
        """Hand the item to the worker (starting it first if needed) and wait for its end."""
        if not self.alive():
            if self.process is not None:
                self.restarts += 1
                progress("restart", "the worker was gone")
                self._kill()
            self._start()
        assert self.inbox is not None, "started above"
        assert self.process is not None, "started above"
        exchange = ExchangeDir(spec, root=self.root, host_paths=True)
        env = exchange.write(spec, self.env | dict(os.environ))
        self.seq += 1
        response = exchange.path / f"{exchange.key}_response.json"
        request = WorkerRequest(
            seq=self.seq,
            config_path=env["LLEM_CONFIG_PATH"],
            log_file=env["LLEM_LOG_FILE"],
            response_file=str(response),
            token_file=env.get("LLEM_TOKEN_FILE"),
        )
        write_atomic(self.inbox / REQUEST_NAME, request.model_dump_json())
        process = self.process
        tail = LogTail(exchange.log_file, progress)
        # The one timeout that governs an item wherever it runs is its pytest-timeout (the
        # interrupt above kills the worker); this bound only catches a worker that neither
        # answers nor dies when no item timeout is set, as the container runners do.
        timeout = self.timeout_s or default_timeout_s(spec.config)
        try:
            finished = wait_until(
                lambda: response.is_file() or process.poll() is not None, timeout, tail
            )
        except BaseException:
            # The item was interrupted here (pytest-timeout's signal, Ctrl-C): the worker would
            # go on with it and the next item would queue behind. Kill it; the next starts anew.
            self._kill()
            exchange.cleanup()
            raise
        if not finished:
            self._kill()
            raise WorkerProcessError(
                f"the item did not finish within {timeout:g}s; its worker was killed (a new "
                "one starts for the next item)",
                "raise the item timeout (execution.timeout_s, llem_item_timeout)",
            )
        return self._outcome(exchange, response, tail)

    def _outcome(self, exchange: ExchangeDir, response: Path, tail: LogTail) -> Measurement:
        measurement, failure = exchange.read()
        exchange.remove_token()
        code = 1
        if response.is_file():
            with contextlib.suppress(ValidationError, ValueError):
                code = WorkerResponse.model_validate_json(response.read_text("utf-8")).exit_code
        if code == 0 and measurement is not None:
            exchange.cleanup()
            return measurement.model_copy(update={"runner": self.info})
        if failure is not None:
            raise WorkerProcessError(
                f"{failure.type}: {failure.message}",
                failure.fix or f"see the worker's output in {exchange.path}",
            )
        status = self.process.poll() if self.process is not None else None
        self._kill()  # it died under the item: the next item starts a new one
        raise WorkerProcessError(
            f"the worker ({self.interpreter}) exited with {status} during the item",
            f"see its output: {self._worker_log()[-500:] or tail.text()[-500:]}",
        )

    def close(self) -> None:
        """Stop the worker and remove its inbox."""
        self._kill()
        if self.inbox is not None:
            shutil.rmtree(self.inbox, ignore_errors=True)
            self.inbox = None
