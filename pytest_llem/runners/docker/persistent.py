"""Persistent strategy: one long-lived container per (backend, image) per worker, with a
health check before each item and a bounded number of restarts.

Its main process is a warm worker (``entrypoint --serve``, protocol in ``worker.py``) that
keeps the loaded engine across items while the load key stays the same; with
``llem_persistent_worker = false`` the container idles and each item is an ``exec`` of the
one-shot entrypoint (a new process, a new engine).

The trade-off: no container start (and, with the worker, no engine start) per item, but items
share one container and process, so GPU memory and driver state are not isolated.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_llem.measure.phases import Progress
from pytest_llem.results.records import Measurement, RunnerInfo
from pytest_llem.runners.docker import create, outcome
from pytest_llem.runners.docker.client import client, run_detached
from pytest_llem.runners.docker.container_options import DockerOptions, default_timeout_s
from pytest_llem.runners.docker.errors import (
    ContainerError,
    DockerError,
    DockerTimeoutError,
    from_sdk,
)
from pytest_llem.runners.docker.exchange import MOUNT, ExchangeDir
from pytest_llem.runners.docker.images import pull_if_missing
from pytest_llem.runners.docker.worker import (
    REQUEST_NAME,
    WorkerRequest,
    WorkerResponse,
    serve_command,
    write_atomic,
)
from pytest_llem.runners.run_spec import RunSpec

# Runs in the container: total used GPU memory (MB) over the visible GPUs, or -1 without NVML.
GPU_MEMORY_PROBE = (
    "import pynvml\n"
    "try:\n"
    "    pynvml.nvmlInit()\n"
    "except pynvml.NVMLError:\n"
    "    print(-1); raise SystemExit\n"
    "handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]\n"
    "print(sum(pynvml.nvmlDeviceGetMemoryInfo(h).used for h in handles) / 1e6)\n"
)
IDLE_COMMAND = "import signal\nwhile True:\n    signal.pause()\n"


def _logs(box: Any) -> str:
    """The container's last output lines (the worker's stderr), or nothing when it is gone."""
    try:
        return str(box.logs(stdout=True, stderr=True, tail=40).decode("utf-8", "replace"))
    except Exception:  # removed: the item's log file still has the item's own output
        return ""


class PersistentRunner:
    """Keeps one container running and hands it every item (to its worker, or by ``exec``)."""

    def __init__(self, image: str, source: str, opts: DockerOptions, root: Path) -> None:
        self.image = image
        self.opts = opts
        self.root = root  # host directory mounted at MOUNT; items use subdirectories
        self.info = RunnerInfo(type="docker", source=source, strategy="persistent", image=image)
        self.box: Any = None
        self.mounts: dict[str, dict[str, str]] = {}
        self.restarts = 0
        self.digest: str | None = None
        self.notes: list[str] = []
        self.last_create: dict[str, Any] = {}
        self.inbox: Path | None = None  # the worker's request directory, under root
        self.seq = 0
        # The worker holds an engine from a finished item: the GPU memory it uses is that
        # engine's, so the memory probe would only ever see it (and restart a warm worker).
        self.warm = False

    def _command(self) -> list[str]:
        if not self.opts.worker:
            return [self.opts.python, "-c", IDLE_COMMAND]
        if self.inbox is None:
            self.inbox = Path(tempfile.mkdtemp(prefix="worker-", dir=self.root))
            os.chmod(self.inbox, 0o755)
        # A request left by a killed worker must not run again in the new container.
        (self.inbox / REQUEST_NAME).unlink(missing_ok=True)
        return serve_command(self.opts.python, f"{MOUNT}/{self.inbox.name}")

    # -- lifecycle --------------------------------------------------------------------------

    def _start(self, spec: RunSpec) -> None:
        api = client()
        self.digest = pull_if_missing(api, self.image)
        kwargs = create.create_kwargs(
            self.image,
            spec,
            self.opts,
            self.root,
            command=self._command(),
            environment=create.environment(spec, self.opts),
            mounts=self.mounts,
            labels={**create.labels(spec, self.opts), f"{create.LABEL}.strategy": "persistent"},
        )
        self.last_create = kwargs
        try:
            self.box = run_detached(api, **kwargs)
        except Exception as exc:
            raise from_sdk(exc, self.image) from None
        if self.opts.warmup_delay_s > 0:
            time.sleep(self.opts.warmup_delay_s)

    def _stop(self) -> None:
        self.warm = False
        if self.box is not None:
            with contextlib.suppress(Exception):  # already gone
                self.box.remove(force=True)
            self.box = None

    def _restart(self, spec: RunSpec, why: str) -> None:
        # Only health failures count against the bound: a first start, a remount for a new
        # study directory, or the replacement after a timeout kill are planned, not failures.
        if self.restarts >= self.opts.max_restarts:
            raise ContainerError(
                f"the persistent container failed its health check ({why}) and "
                f"llem_persistent_max_restarts = {self.opts.max_restarts} restarts are used up",
                "inspect the image and the GPU (`docker logs` of the container); raise "
                "llem_persistent_max_restarts; or use --llem-container-strategy ephemeral",
            )
        self.restarts += 1
        self._stop()
        self._start(spec)

    def healthy(self, spec: RunSpec) -> str | None:
        """None when the container may take the item; otherwise why not."""
        if self.box is None:
            return "not started"
        try:
            self.box.reload()
        except Exception as exc:  # removed behind our back
            return f"cannot inspect the container: {exc}"
        if self.box.status != "running":
            return f"container is {self.box.status}"
        if spec.config.device == "cuda" and not self.warm:
            code, out = self.box.exec_run([self.opts.python, "-c", GPU_MEMORY_PROBE])
            try:
                used = float(out.decode().strip().splitlines()[-1])
            except (ValueError, IndexError):
                return f"GPU memory probe failed (exit {code})"
            if used > self.opts.gpu_memory_threshold_mb:
                return f"{used:.0f} MB of GPU memory still in use"
        return None

    # -- items ------------------------------------------------------------------------------

    def run(self, spec: RunSpec, progress: Progress) -> Measurement:
        """Health-check (restart if needed), then hand the item to the container."""
        needed = create.mounts_for(spec, self.opts)
        if any(self.mounts.get(k) != v for k, v in needed.items()):
            self.mounts = {**self.mounts, **needed}  # a new study dir or model: remount
            self._stop()
        if self.box is None:
            self._start(spec)
        problem = self.healthy(spec)
        if problem is not None:
            progress("restart", problem)
            self._restart(spec, problem)
            # A fresh container that is still unhealthy (another process holding the GPU's
            # memory, a broken image) would fail every restart the same way: stop here.
            still = self.healthy(spec)
            if still is not None:
                raise ContainerError(
                    f"the persistent container is still unhealthy after a restart ({still})",
                    "check what else holds the GPU (nvidia-smi); raise "
                    "llem_persistent_gpu_memory_mb; or use --llem-container-strategy ephemeral",
                )
        exchange = ExchangeDir(spec, root=self.root, nested=True)
        inside = outcome.container_spec(spec, exchange)
        env = {**create.environment(spec, self.opts), **exchange.write(inside)}
        if not self.opts.worker:
            measurement = self._via_exec(spec, exchange, env, progress)
        else:
            measured = self._via_worker(spec, exchange, env, progress)
            if measured is None:
                # The worker died before it took the item (killed between items, or while the
                # health check looked): a failed health check, found late. Restart, resend.
                problem = f"container is {self.box.status}"
                progress("restart", problem)
                try:
                    self._restart(spec, problem)
                except DockerError as exc:
                    raise outcome.keep(exc, exchange) from None
                measured = self._via_worker(spec, exchange, env, progress)
            if measured is None:
                raise outcome.keep(
                    ContainerError(
                        "the persistent container's worker exited twice before taking the item",
                        "run the image by hand (`docker logs` of the container); or use "
                        "--llem-container-strategy ephemeral",
                        _logs(self.box),
                    ),
                    exchange,
                )
            measurement = measured
        info = self.info.model_copy(
            update={
                "container_id": self.box.id[:12],
                "image_digest": self.digest,
                "restart_reason": problem,
            }
        )
        return measurement.model_copy(update={"runner": info})

    def _timed_out(self, timeout: float, tail: outcome.LogTail) -> DockerError:
        self._stop()  # killing the container is the only way to stop a hung item
        return DockerTimeoutError(
            f"the item did not finish within {timeout:g}s; the persistent "
            "container was killed (it restarts for the next item)",
            stderr_snippet=tail.text(),
        )

    def _via_worker(
        self, spec: RunSpec, exchange: ExchangeDir, env: dict[str, str], progress: Progress
    ) -> Measurement | None:
        """Write the worker's request, wait for its response or the container's end.

        None when the container stopped with the request still unclaimed: the worker was gone
        before the item began, so the item has not failed.
        """
        assert self.inbox is not None, "a worker container has an inbox"
        self.seq += 1
        response = exchange.path / f"{exchange.key}_response.json"
        request = WorkerRequest(
            seq=self.seq,
            config_path=env["LLEM_CONFIG_PATH"],
            log_file=env["LLEM_LOG_FILE"],
            response_file=exchange.container_path(response.name),
            token_file=env.get("LLEM_TOKEN_FILE"),
        )
        write_atomic(self.inbox / REQUEST_NAME, request.model_dump_json())
        box = self.box
        self.warm = False  # until the worker says the item finished

        def done() -> bool:
            if response.is_file():
                return True
            try:
                box.reload()
            except Exception:  # removed behind our back: it will not answer
                return True
            return bool(box.status != "running")

        tail = outcome.LogTail(exchange.log_file, progress)
        timeout = self.opts.timeout_s or default_timeout_s(spec.config)
        try:
            with outcome.dropped_on_interrupt(exchange):
                finished = outcome.wait_until(done, timeout, tail)
        except BaseException:
            # Interrupted on the host (the item's pytest-timeout, Ctrl-C): the worker would go
            # on with the abandoned item and every later item would queue behind it. Kill the
            # container; the next item starts a fresh one.
            self._stop()
            raise
        if not finished:
            raise outcome.keep(self._timed_out(timeout, tail), exchange)
        if response.is_file():
            try:
                code = WorkerResponse.model_validate_json(response.read_text("utf-8")).exit_code
            except (ValidationError, ValueError):
                code = 1  # the result or error file still says what happened
            measurement = outcome.read_outcome(exchange, spec, code, False, tail.text())
            # Only a success gets here (read_outcome raises otherwise): the worker drops the
            # engine of a failed item, so then nothing is held and the probe runs again.
            self.warm = True
            return measurement
        if (self.inbox / REQUEST_NAME).exists():
            return None
        # The worker died under the item, and the container with it: its exit code says how
        # (137: killed, often out of memory). The next item's health check restarts it.
        state = box.attrs.get("State", {})
        logs = _logs(box)
        return outcome.read_outcome(
            exchange,
            spec,
            int(state.get("ExitCode", 1)),
            bool(state.get("OOMKilled")),
            f"{tail.text()}\n{logs}".strip(),
        )

    def _via_exec(
        self, spec: RunSpec, exchange: ExchangeDir, env: dict[str, str], progress: Progress
    ) -> Measurement:
        """Exec the one-shot entrypoint for this item (a new process, a new engine)."""
        api = client().api
        try:
            exec_id = api.exec_create(self.box.id, create.command(self.opts), environment=env)["Id"]
        except Exception as exc:
            raise outcome.keep(from_sdk(exc, self.image), exchange) from None
        # A blocking exec on a thread: detached exec sessions are reported as running forever
        # by podman 4, and a streamed attach leaves a socket open; this returns when done.
        output: dict[str, Any] = {}

        def run_exec() -> None:
            try:
                output["bytes"] = api.exec_start(exec_id, detach=False, stream=False)
            except Exception as exc:  # the container died or was killed under the exec
                output["error"] = exc

        worker = threading.Thread(target=run_exec, name="llem-exec", daemon=True)
        worker.start()
        tail = outcome.LogTail(exchange.log_file, progress)
        timeout = self.opts.timeout_s or default_timeout_s(spec.config)
        try:
            with outcome.dropped_on_interrupt(exchange):
                finished = outcome.wait_until(lambda: not worker.is_alive(), timeout, tail)
        except BaseException:
            self._stop()  # as in _via_worker: the exec would go on with the abandoned item
            raise
        if not finished:
            raise outcome.keep(self._timed_out(timeout, tail), exchange)
        try:
            code = api.exec_inspect(exec_id).get("ExitCode")
        except Exception:  # some engines drop finished exec sessions: the files tell the rest
            code = None
        if code is None:
            code = 0 if (exchange.path / f"{exchange.key}_result.json").is_file() else 1
        text = output.get("bytes", b"").decode("utf-8", errors="replace") or tail.text()
        return outcome.read_outcome(exchange, spec, int(code), False, text)

    def close(self) -> None:
        """Tear the container down, or leave it running and say how to remove it."""
        if self.box is None or self.opts.auto_teardown:
            # Also when an interrupted item already killed the container: its inbox stays.
            self._stop()
            if self.inbox is not None:
                shutil.rmtree(self.inbox, ignore_errors=True)
                self.inbox = None
        else:
            self.notes.append(
                f"persistent container {self.box.id[:12]} ({self.image}) left running: "
                f"remove it with `docker rm -f {self.box.id[:12]}`"
            )


__all__ = ["DockerError", "PersistentRunner"]
