"""Which runner each backend uses, and where that choice came from.

Precedence, first match wins: env ``LLEM_RUNNER_<BACKEND>`` > ``--llem-runner`` > the study's
``runners:`` > ini ``llem_runner_<backend>`` > ``local``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pytest_llem.study.sections import RunnerMode, RunnersConfig, parse_runner_value

Source = Literal["env", "cli", "study", "ini", "default", "auto-elevated"]
EVERY_BACKEND = "*"  # --llem-runner docker: one value for every backend


@dataclass(frozen=True)
class RunnerSpec:
    """Where one backend's items run."""

    mode: RunnerMode
    image: str | None
    source: Source
    interpreter: str | None = None  # python: runners

    def label(self) -> str:
        """``docker:<image>`` / ``python:<interpreter>`` / ``local``, with the source."""
        if self.interpreter:
            target = f"python:{self.interpreter}"
        else:
            target = f"docker:{self.image}" if self.image else self.mode
        return f"{target} (from {self.source})"


def from_value(value: str, source: Source) -> RunnerSpec:
    """A RunnerSpec from a runner value (``local``, ``docker:<image>``, ``python:<path>``).

    Raises:
        ValueError: a malformed value.
    """
    mode, target = parse_runner_value(value)
    if mode == "python":
        return RunnerSpec(mode, None, source, interpreter=target)
    return RunnerSpec(mode, target, source)


def parse_cli(value: str | None) -> dict[str, str]:
    """``--llem-runner docker`` (every backend) or ``vllm=docker:img,pytorch=local``.

    Backend names are checked against the registry once it is built (``unknown_backends``).

    Raises:
        ValueError: a malformed runner value.
    """
    if not value:
        return {}
    if "=" not in value:
        parse_runner_value(value)
        return {EVERY_BACKEND: value}
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        backend, _, runner = part.partition("=")
        parse_runner_value(runner)
        out[backend] = runner
    return out


def unknown_backends(cli: Mapping[str, str], registered: tuple[str, ...]) -> str | None:
    """The problem with ``--llem-runner`` backend names that are not registered, if any."""
    unknown = sorted(set(cli) - set(registered) - {EVERY_BACKEND})
    if not unknown:
        return None
    return f"--llem-runner: unknown backend {unknown[0]!r}; use one of {list(registered)}"


def resolve(
    backend: str,
    cli: Mapping[str, str],
    study: RunnersConfig,
    ini: Mapping[str, str],
    env: Mapping[str, str] | None = None,
) -> RunnerSpec:
    """The runner for ``backend``.

    Raises:
        ValueError: a malformed value, naming where it came from.
    """
    env = os.environ if env is None else env
    layers: list[tuple[Source, str | None]] = [
        ("env", env.get(f"LLEM_RUNNER_{backend.upper()}")),
        ("cli", cli.get(backend, cli.get(EVERY_BACKEND))),
        ("study", study.for_backend(backend)),
        ("ini", ini.get(backend)),
    ]
    for source, value in layers:
        if value:
            try:
                return from_value(value, source)
            except ValueError as exc:
                where = f"LLEM_RUNNER_{backend.upper()}" if source == "env" else source
                raise ValueError(f"{where}: {exc}") from None
    return RunnerSpec("local", None, "default")


def explicit_local(spec: RunnerSpec) -> bool:
    """A ``local`` that someone asked for (env, option, study, ini), not the default."""
    return spec.mode == "local" and spec.source != "default"


def elevate(specs: Mapping[str, RunnerSpec]) -> dict[str, RunnerSpec]:
    """A multi-backend study needs isolation: every backend that runs locally by default moves
    to Docker. An explicit ``local`` (``LLEM_RUNNER_<BACKEND>=local``, ``--llem-runner local``,
    the study or ini) beats elevation: the user asked for it, and the pool prints a note.
    """
    return {
        b: RunnerSpec("docker", None, "auto-elevated")
        if s.mode == "local" and not explicit_local(s)
        else s
        for b, s in specs.items()
    }
