"""The worker's runners: which runner each item uses (resolution, elevation), created once.

Local runners share nothing but a model cache; docker runners are one per (image, strategy)
and backend, so a persistent container serves one backend and one image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pytest_llem.engines.builtin import BUILTIN
from pytest_llem.errors import LlemError
from pytest_llem.measure.phases import Progress
from pytest_llem.preflight.check import Check
from pytest_llem.results.records import Measurement, RunnerInfo
from pytest_llem.runners.docker.container_options import DockerOptions
from pytest_llem.runners.local import LocalRunner
from pytest_llem.runners.run_spec import Runner, RunSpec
from pytest_llem.runners.selection import (
    RunnerSpec,
    elevate,
    explicit_local,
    from_value,
    resolve,
)
from pytest_llem.study.backends import BackendRegistry
from pytest_llem.study.plan import Point, StudyPlan


@dataclass(frozen=True)
class RunnerSettings:
    """What the pool needs of the session's settings (passed down, never imported up)."""

    runner_cli: dict[str, str] = field(default_factory=dict)
    runner_ini: dict[str, str] = field(default_factory=dict)
    docker: DockerOptions = field(default_factory=DockerOptions)
    backends: BackendRegistry = BUILTIN
    ab_cli: dict[str, str] = field(default_factory=dict)  # --llem-ab: arm -> runner value


# Advice goes to the terminal summary (and the report), not to Python warnings: a project
# running with -W error must not see its items fail over advice.
PERSISTENT_TRADE_OFF = (
    "persistent containers: one container per backend and image runs every item, and its "
    "worker keeps the engine loaded while the load configuration stays the same (no container "
    "start and no reload per item), so items share GPU memory and driver state; a health "
    "check and bounded restarts guard it. Use the ephemeral strategy for isolation."
)


class RunnerPool:
    """Resolves, creates and closes the runners of one pytest process."""

    def __init__(self, settings: RunnerSettings) -> None:
        self.settings = settings
        self._specs: dict[tuple[str, str], RunnerSpec] = {}
        self._runners: dict[tuple[object, ...], Runner] = {}
        self._probes: dict[tuple[str, tuple[str, ...]], str | None] = {}
        self._docker_checks: dict[tuple[str, bool], tuple[list[Check], list[str]]] = {}
        self._isolation: dict[tuple[str, str], Check] = {}
        self._warned: set[str] = set()
        self._python: dict[str, str] = {}
        self.notes: list[str] = []
        self._root: Path | None = None

    # -- resolution -------------------------------------------------------------------------

    def spec(self, plan: StudyPlan, backend: str) -> RunnerSpec:
        """The runner spec of a backend within its study."""
        key = (plan.study_hash, backend)
        if key not in self._specs:
            specs = {
                b: resolve(b, self.settings.runner_cli, plan.runners, self.settings.runner_ini)
                for b in plan.backends
            }
            if len(specs) > 1 and any(s.mode == "local" for s in specs.values()):
                specs = self._isolate(plan, specs)
            for b, s in specs.items():
                self._specs[(plan.study_hash, b)] = s
            self._warn_mixed()
        return self._specs[key]

    def point_spec(self, plan: StudyPlan, point: Point) -> tuple[RunnerSpec, dict[str, str]]:
        """Where a point runs, and the environment of its process: an A/B arm's own runner
        (``--llem-ab`` over the study's ``ab:``) else its backend's."""
        base = self.spec(plan, point.backend)
        if point.arm is None or plan.ab is None:
            return base, {}
        arm = plan.ab.arm(point.arm)
        cli = self.settings.ab_cli.get(point.arm)
        value = cli or arm.runner
        spec = from_value(value, "cli" if cli else "study") if value else base
        env = dict(arm.env)
        if spec.mode == "local" and env:
            # An arm's env: is its process's: a local arm with one runs in a worker of this
            # very interpreter, so the other arm (and pytest) never see it.
            spec = RunnerSpec("python", None, spec.source, interpreter=sys.executable)
        return spec, env

    def _isolate(self, plan: StudyPlan, specs: dict[str, RunnerSpec]) -> dict[str, RunnerSpec]:
        kept = [b for b, s in specs.items() if explicit_local(s)]
        if kept:
            self.notes.append(
                f"note: study {plan.name} has backends {list(specs)}, which need isolation; "
                + ", ".join(f"{b} runs locally as asked ({specs[b].source})" for b in kept)
                + ": an explicit local runner beats elevation to Docker"
            )
        implicit = [b for b, s in specs.items() if s.mode == "local" and not explicit_local(s)]
        if not implicit:
            return specs
        from pytest_llem.runners.docker.client import reachable

        reason = reachable()
        if reason is None:
            return elevate(specs)
        for backend in implicit:
            self._isolation[(plan.study_hash, backend)] = Check(
                "docker",
                f"study {plan.name} uses backends {list(specs)}, which must run in separate "
                f"containers (their CUDA, NCCL and library state collide in one process), and "
                f"no Docker API is reachable: {reason}",
                "start Docker (or `podman system service`) and set DOCKER_HOST; or run this "
                f"backend alone in this process: --llem-runner {backend}=local -m {backend} "
                f"(or LLEM_RUNNER_{backend.upper()}=local); or split the study into one file "
                "per backend",
            )
        return specs

    def _warn_mixed(self) -> None:
        modes = {s.mode for s in self._specs.values()}
        if modes == {"local", "docker"} and "mixed" not in self._warned:
            self._warned.add("mixed")
            self.notes.append(
                "note: some backends run locally and others in Docker: their measurements are "
                "not taken under the same conditions; set one runner for all with --llem-runner"
            )

    # -- checks -----------------------------------------------------------------------------

    def checks(self, plan: StudyPlan, point: Point) -> list[Check]:
        """Runner-level pre-flight problems of a point (isolation, Docker, image, GPU, the
        interpreter of a python: runner)."""
        spec, _ = self.point_spec(plan, point)  # resolves the study's runners on first use
        isolation = self._isolation.get((plan.study_hash, point.backend))
        if isolation is not None and point.arm is None:
            return [isolation]
        if spec.mode == "python":
            return self._python_checks(spec, point)
        if spec.mode != "docker":
            return []
        from pytest_llem.runners.docker import readiness

        assert point.config is not None
        image = self.image(spec, point.backend)
        if image is None:
            return [_no_image(point.backend)]
        unpublished = self._unpublished(spec, point.backend)
        if unpublished is not None:
            return [unpublished]
        cuda = point.config.device == "cuda"
        key = (image, cuda)
        if key not in self._docker_checks:
            self._docker_checks[key] = readiness.check(image, cuda, self.options(image))
            self.notes.extend(f"note: {m}" for m in self._docker_checks[key][1])
        return list(self._docker_checks[key][0])

    # -- runners ----------------------------------------------------------------------------

    def image(self, spec: RunnerSpec, backend: str) -> str | None:
        """The image for a docker spec: as given, else the backend's default (None: it has
        none, as a backend from another package unless it names one)."""
        if spec.image:
            return spec.image
        from pytest_llem.runners.docker.images import cuda_major, default_image, package_version

        template = self.settings.backends.get(backend).image
        if template is None:
            return None
        return default_image(backend, package_version(), cuda_major(), template)

    def _unpublished(self, spec: RunnerSpec, backend: str) -> Check | None:
        """The default image for this host's CUDA, when it is not a published tag."""
        if spec.image:
            return None
        from pytest_llem.runners.docker.images import (
            cuda_major,
            package_version,
            unpublished_default,
        )

        template = self.settings.backends.get(backend).image
        if template is None:
            return None
        found = unpublished_default(backend, package_version(), cuda_major(), template)
        return Check("image", *found) if found is not None else None

    def options(self, image: str) -> DockerOptions:
        """Container settings for ``image``: the Python it runs is the configured one, else
        the interpreter of the image's CMD (asked once per image)."""
        opts = self.settings.docker
        if opts.python:
            return opts
        if image not in self._python:
            from pytest_llem.runners.docker.client import client
            from pytest_llem.runners.docker.images import FALLBACK_PYTHON, entry_python

            try:
                self._python[image] = entry_python(client(), image)
            except LlemError:  # no API or no image: pre-flight reports it, with its fix
                return dataclasses.replace(opts, python=FALLBACK_PYTHON)
        return dataclasses.replace(opts, python=self._python[image])

    def _python_checks(self, spec: RunnerSpec, point: Point) -> list[Check]:
        from pytest_llem.runners.python_worker import probe

        assert spec.interpreter is not None
        packages = self.settings.backends.get(point.backend).packages
        key = (spec.interpreter, packages)
        if key not in self._probes:
            self._probes[key] = probe(spec.interpreter, packages)
        problem = self._probes[key]
        if problem is None:
            return []
        return [
            Check(
                "runner",
                f"python:{spec.interpreter}: {problem}",
                f"install this pytest-llem and the {point.backend} backend into that "
                f"environment ({spec.interpreter} -m pip install ...), or point python: at one "
                "that has them",
            )
        ]

    def runner(self, plan: StudyPlan, point: Point) -> Runner:
        """The runner of a point, created on first use."""
        backend = point.backend
        spec, env = self.point_spec(plan, point)
        strategy = self.settings.docker.strategy if spec.mode == "docker" else spec.mode
        image = self.image(spec, backend) if spec.mode == "docker" else None
        if spec.mode == "docker" and image is None:
            return _Refused(_no_image(backend))  # pre-flight fails the item with the same text
        key = (backend, image, spec.interpreter, strategy, spec.source, tuple(sorted(env.items())))
        if key not in self._runners:
            self._runners[key] = self._create(spec, image, strategy, env)
        return self._runners[key]

    def _scratch(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="llem-persistent-"))
        return self._root

    def _create(
        self, spec: RunnerSpec, image: str | None, strategy: str, env: dict[str, str]
    ) -> Runner:
        if spec.mode == "python":
            from pytest_llem.runners.python_worker import PythonRunner

            assert spec.interpreter is not None
            return PythonRunner(
                spec.interpreter, spec.source, env, self._scratch(), self.settings.docker.timeout_s
            )
        if spec.mode == "local" or image is None:
            return LocalRunner(spec.source)
        opts = self.options(image)
        if env:
            opts = dataclasses.replace(opts, env={**opts.env, **env})
        if strategy == "persistent":
            from pytest_llem.runners.docker.persistent import PersistentRunner

            if "persistent" not in self._warned:
                self._warned.add("persistent")
                self.notes.append(f"note: {PERSISTENT_TRADE_OFF}")
            return PersistentRunner(image, spec.source, opts, self._scratch())
        from pytest_llem.runners.docker.ephemeral import EphemeralRunner

        return EphemeralRunner(image, spec.source, opts)

    def runners(self) -> list[Runner]:
        """Every runner created so far."""
        return list(self._runners.values())

    def close(self) -> list[str]:
        """Close every runner; return notes for the user (e.g. containers left running)."""
        runners, self._runners = self._runners, {}
        for runner in runners.values():
            runner.close()
            self.notes.extend(getattr(runner, "notes", []))
        if self._root is not None:
            # Empty once every item succeeded; a failed item's exchange dir (path printed) or
            # a container left running (auto_teardown off) keeps it, and rmdir leaves it be.
            with contextlib.suppress(OSError):
                self._root.rmdir()
        return self.notes


class _Refused:
    """A runner that cannot exist: its pre-flight check fails the item before it would run."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.info = RunnerInfo(type="docker")

    def run(self, spec: RunSpec, progress: Progress) -> Measurement:
        raise LlemError(self.check.message, self.check.fix)

    def close(self) -> None:
        return None


def _no_image(backend: str) -> Check:
    return Check(
        "image",
        f"backend {backend} runs in Docker here but has no default image",
        f"name one: --llem-runner {backend}=docker:IMAGE, or runners: {{{backend}: docker:IMAGE}} "
        "in the study",
    )
