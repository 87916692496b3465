"""Waiting for an item's container and collecting what it wrote: the exchange files, the
entrypoint's progress lines from its log file, and a translated error when it failed."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pytest_llem.measure.phases import Progress
from pytest_llem.results.records import Measurement
from pytest_llem.runners.docker.errors import DockerError, from_exit
from pytest_llem.runners.docker.exchange import ExchangeDir
from pytest_llem.runners.run_spec import RunSpec


def container_spec(spec: RunSpec, exchange: ExchangeDir) -> RunSpec:
    """The RunSpec as the container sees it (timeseries written into the exchange dir)."""
    if spec.timeseries_file is None:
        return spec
    return spec.model_copy(
        update={"timeseries_file": exchange.container_path(f"{exchange.key}_timeseries.jsonl")}
    )


def read_outcome(
    exchange: ExchangeDir, spec: RunSpec, exit_code: int, oom_killed: bool, output: str
) -> Measurement:
    """The measurement the container wrote, or the translated error (exchange dir kept)."""
    measurement, failure = exchange.read()
    exchange.remove_token()
    if exit_code == 0 and measurement is not None:
        if spec.timeseries_file and measurement.sampler and measurement.sampler.timeseries_file:
            inside = exchange.path / f"{exchange.key}_timeseries.jsonl"
            if inside.is_file():
                Path(spec.timeseries_file).parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(inside), spec.timeseries_file)
            sampler = measurement.sampler.model_copy(
                update={"timeseries_file": spec.timeseries_file}
            )
            measurement = measurement.model_copy(update={"sampler": sampler})
        exchange.cleanup()
        return measurement
    err = from_exit(exit_code, oom_killed, output, failure.model_dump() if failure else None)
    raise keep(err, exchange)


def keep(err: DockerError, exchange: ExchangeDir) -> DockerError:
    """Say where the kept exchange directory is."""
    err.message += f"\n  exchange dir kept for debugging: {exchange.path}"
    return err


@contextlib.contextmanager
def dropped_on_interrupt(exchange: ExchangeDir) -> Iterator[None]:
    """Remove an item's exchange dir when the session is interrupted while it runs.

    A failed item keeps its dir and prints the path; an interrupted one has nothing to inspect
    and nobody would be told where it is, so it would only pile up in the temp dir.
    """
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        exchange.cleanup()
        raise


class LogTail:
    """Follows the entrypoint's log file in the exchange dir: ``[llem] phase detail`` lines
    drive progress, and the whole text is the failure's output. A file, not an attach stream,
    so no API connection stays open while an item runs."""

    def __init__(self, path: Path, progress: Progress) -> None:
        self.path = path
        self._progress = progress
        self._offset = 0
        self._partial = ""
        self.lines: list[str] = []

    def poll(self) -> None:
        """Read what was appended since the last poll."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except OSError:
            return  # not written yet
        self._offset += len(data)
        *complete, self._partial = (self._partial + data.decode("utf-8", errors="replace")).split(
            "\n"
        )
        for line in complete:
            self.lines.append(line)
            if line.startswith("[llem] "):
                phase, _, detail = line[7:].partition(" ")
                self._progress(phase, detail)

    def text(self) -> str:
        """Everything logged so far."""
        self.poll()
        return "\n".join([*self.lines, self._partial]).strip()


def wait_until(
    done: Callable[[], bool], timeout_s: float, tail: LogTail, step_s: float = 0.25
) -> bool:
    """Poll ``done`` (and the log) until true or the timeout; True when done in time."""
    deadline = time.monotonic() + timeout_s
    while True:
        tail.poll()
        if done():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(step_s)
