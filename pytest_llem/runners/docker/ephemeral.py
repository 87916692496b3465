"""Ephemeral strategy (default): one container per item, removed when it finishes."""

from __future__ import annotations

import contextlib
from typing import Any

from pytest_llem.measure.protocol import Progress
from pytest_llem.results import Measurement, RunnerInfo
from pytest_llem.runners.base import RunSpec
from pytest_llem.runners.docker import container as shared
from pytest_llem.runners.docker.client import client
from pytest_llem.runners.docker.errors import DockerTimeoutError, from_sdk
from pytest_llem.runners.docker.exchange import MOUNT, ExchangeDir
from pytest_llem.runners.docker.images import pull_if_missing


class EphemeralRunner:
    """``docker run`` per item: full isolation (GPU memory, CUDA context, libraries)."""

    def __init__(self, image: str, source: str, opts: shared.DockerOptions) -> None:
        self.image = image
        self.opts = opts
        self.info = RunnerInfo(type="docker", source=source, strategy="ephemeral", image=image)
        self.last_create: dict[str, Any] = {}

    def run(self, spec: RunSpec, progress: Progress) -> Measurement:
        """Run one item in a fresh container; kill and remove it on timeout."""
        api = client()
        digest = pull_if_missing(api, self.image)
        exchange = ExchangeDir(spec)
        inside = shared.container_spec(spec, exchange)
        env = {**shared.environment(spec, self.opts), **exchange.write(inside)}
        volumes = {
            str(exchange.path): {"bind": MOUNT, "mode": "rw"},
            **shared.mounts_for(spec, self.opts),
        }
        kwargs: dict[str, Any] = {
            "image": self.image,
            "command": shared.command(self.opts),
            "environment": env,
            "volumes": volumes,
            "shm_size": self.opts.shm_size,
            "labels": shared.labels(spec, self.opts),
            "device_requests": shared.device_requests(spec.config),
            "detach": True,
        }
        self.last_create = kwargs
        try:
            box = api.containers.create(**kwargs)
        except Exception as exc:  # SDK errors of every kind become DockerErrors
            raise shared.keep(from_sdk(exc, self.image), exchange) from None
        try:
            with shared.dropped_on_interrupt(exchange):
                return self._wait(box, spec, exchange, progress, digest)
        finally:
            with contextlib.suppress(Exception):  # already gone: nothing to clean
                box.remove(force=True)

    def _wait(
        self, box: Any, spec: RunSpec, exchange: ExchangeDir, progress: Progress, digest: str | None
    ) -> Measurement:
        timeout = self.opts.timeout_s or shared.default_timeout_s(spec.config)
        box.start()
        tail = shared.LogTail(exchange.log_file, progress)

        def exited() -> bool:
            box.reload()
            return bool(box.status in ("exited", "dead", "stopped"))

        if not shared.wait_until(exited, timeout, tail):
            box.kill()
            raise shared.keep(
                DockerTimeoutError(
                    f"the item did not finish within {timeout:g}s; its container was killed",
                    stderr_snippet=tail.text(),
                ),
                exchange,
            )
        state = box.attrs.get("State", {})
        output = box.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
        measurement = shared.collect(
            exchange, spec, int(state.get("ExitCode", 1)), bool(state.get("OOMKilled")), output
        )
        info = self.info.model_copy(update={"container_id": box.id[:12], "image_digest": digest})
        return measurement.model_copy(update={"runner": info})

    def close(self) -> None:
        """Nothing persists between items."""
