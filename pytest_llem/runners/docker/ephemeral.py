"""Ephemeral strategy (default): one container per item, removed when it finishes."""

from __future__ import annotations

import contextlib
from typing import Any

from pytest_llem.measure.phases import Progress
from pytest_llem.results.records import Measurement, RunnerInfo
from pytest_llem.runners.docker import create, outcome
from pytest_llem.runners.docker.client import client
from pytest_llem.runners.docker.container_options import DockerOptions, default_timeout_s
from pytest_llem.runners.docker.errors import DockerTimeoutError, from_sdk
from pytest_llem.runners.docker.exchange import ExchangeDir
from pytest_llem.runners.docker.images import pull_if_missing
from pytest_llem.runners.run_spec import RunSpec


class EphemeralRunner:
    """``docker run`` per item: full isolation (GPU memory, CUDA context, libraries)."""

    def __init__(self, image: str, source: str, opts: DockerOptions) -> None:
        self.image = image
        self.opts = opts
        self.info = RunnerInfo(type="docker", source=source, strategy="ephemeral", image=image)
        self.last_create: dict[str, Any] = {}

    def run(self, spec: RunSpec, progress: Progress) -> Measurement:
        """Run one item in a fresh container; kill and remove it on timeout."""
        api = client()
        digest = pull_if_missing(api, self.image)
        exchange = ExchangeDir(spec)
        inside = outcome.container_spec(spec, exchange)
        env = {**create.environment(spec, self.opts), **exchange.write(inside)}
        kwargs = create.create_kwargs(
            self.image,
            spec,
            self.opts,
            exchange.path,
            command=create.command(self.opts),
            environment=env,
            mounts=create.mounts_for(spec, self.opts),
            labels=create.labels(spec, self.opts),
        )
        self.last_create = kwargs
        try:
            box = api.containers.create(**kwargs)
        except Exception as exc:  # SDK errors of every kind become DockerErrors
            raise outcome.keep(from_sdk(exc, self.image), exchange) from None
        try:
            with outcome.dropped_on_interrupt(exchange):
                return self._wait(box, spec, exchange, progress, digest)
        finally:
            with contextlib.suppress(Exception):  # already gone: nothing to clean
                box.remove(force=True)

    def _wait(
        self, box: Any, spec: RunSpec, exchange: ExchangeDir, progress: Progress, digest: str | None
    ) -> Measurement:
        timeout = self.opts.timeout_s or default_timeout_s(spec.config)
        box.start()
        tail = outcome.LogTail(exchange.log_file, progress)

        def exited() -> bool:
            box.reload()
            return bool(box.status in ("exited", "dead", "stopped"))

        if not outcome.wait_until(exited, timeout, tail):
            box.kill()
            raise outcome.keep(
                DockerTimeoutError(
                    f"the item did not finish within {timeout:g}s; its container was killed",
                    stderr_snippet=tail.text(),
                ),
                exchange,
            )
        state = box.attrs.get("State", {})
        output = box.logs(stdout=True, stderr=True).decode("utf-8", errors="replace")
        measurement = outcome.read_outcome(
            exchange, spec, int(state.get("ExitCode", 1)), bool(state.get("OOMKilled")), output
        )
        info = self.info.model_copy(update={"container_id": box.id[:12], "image_digest": digest})
        return measurement.model_copy(update={"runner": info})

    def close(self) -> None:
        """Nothing persists between items."""
