"""Every --llem-* option and ini key, declared once and resolved once into frozen Settings.

No other module calls ``getoption``/``getini``: they read ``Settings`` from the config stash.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.engines.builtin import BUILTIN
from pytest_llem.gate.thresholds import Limit
from pytest_llem.runners.docker.container_options import (
    DockerOptions,
    default_hf_cache,
    parse_env,
    parse_volume,
)
from pytest_llem.runners.selection import unknown_backends
from pytest_llem.settings import converters
from pytest_llem.settings.table import DEFAULT_PATTERNS, OPTIONS, Option
from pytest_llem.study.backends import BackendRegistry
from pytest_llem.study.expand import DEFAULT_MAX_POINTS


def add_options(parser: pytest.Parser) -> None:
    """Register the option table with pytest."""
    group = parser.getgroup("llem", "LLM inference energy benchmarks (pytest-llem)")
    for opt in OPTIONS:
        # argparse %-formats option help (not ini help): "5%" would crash pytest --help.
        cli_help = opt.help.replace("%", "%%")
        if not opt.has_cli:
            pass
        elif opt.flag:
            group.addoption(
                opt.cli, action="store_true", default=None, dest=opt.dest, help=cli_help
            )
        else:
            group.addoption(
                opt.cli, default=None, dest=opt.dest, metavar=opt.metavar, help=cli_help
            )
        if opt.ini:
            if opt.flag:
                parser.addini(opt.ini, help=opt.help, type="bool", default=None)
            else:
                parser.addini(opt.ini, help=opt.help, type="string", default=None)
    parser.addini(
        "llem_docker_volumes",
        help="extra bind mounts for containers, one per line: /host[:/container][:ro|rw]",
        type="linelist",
        default=[],
    )
    parser.addini(
        "llem_docker_env",
        help="environment variables for containers, one per line: NAME=VALUE (never a secret: "
        "HF_TOKEN travels as a file)",
        type="linelist",
        default=[],
    )
    parser.addini(
        "llem_runners",
        help="runner per backend, one per line: <backend> = local | docker | docker:<image>",
        type="linelist",
        default=[],
    )
    parser.addini(
        "llem_study_patterns",
        help="glob patterns of study files (default: study_*.yaml study_*.yml)",
        type="linelist",
        default=list(DEFAULT_PATTERNS),
    )


@dataclass(frozen=True)
class OtherPlugins:
    """What other plugins were asked to do (their defaults when they are not installed)."""

    repeat_count: int = 1  # pytest-repeat --count
    benchmark_only: bool = False  # pytest-benchmark --benchmark-only
    timeout_s: float | None = None  # pytest-timeout: --timeout, PYTEST_TIMEOUT, ini timeout
    junitxml: bool = False  # pytest's --junitxml
    junit_family: str = "xunit2"  # pytest's ini junit_family


def _ini(config: pytest.Config, name: str) -> Any:
    try:
        return config.getini(name)
    except ValueError:  # the plugin that declares the key is not loaded
        return None


def _other_plugins(config: pytest.Config) -> OtherPlugins:
    timeout = config.getoption("timeout", default=None)
    if timeout is None:
        timeout = os.environ.get("PYTEST_TIMEOUT") or _ini(config, "timeout") or None
    try:
        timeout_s = float(timeout) if timeout is not None else None
    except ValueError:  # pytest-timeout itself reports a malformed value
        timeout_s = None
    return OtherPlugins(
        repeat_count=int(config.getoption("count", default=1) or 1),
        benchmark_only=bool(config.getoption("benchmark_only", default=False)),
        timeout_s=timeout_s,
        junitxml=bool(config.getoption("xmlpath", default=None)),
        junit_family=str(_ini(config, "junit_family") or "xunit2"),
    )


@dataclass(frozen=True)
class Settings:
    """Resolved settings; ``sources`` says where each value came from (cli, ini, default)."""

    rootdir: Path
    results_dir: Path
    json_path: Path
    max_items: int
    study_patterns: tuple[str, ...]
    energy: str | None = None
    require_gpu: bool = False
    timeseries: bool = False
    item_timeout_s: float | None = None
    save_baseline: str | None = None
    compare: str | None = None
    baseline_dir: Path = Path(".llem/baselines")
    fail_on_cli: tuple[Limit, ...] = ()
    fail_on_ini: tuple[Limit, ...] = ()
    require_energy: bool = False
    require_baseline: bool = False
    inconclusive: str = "fail"
    max_cv: float | None = None
    save_baseline_force: bool = False
    plot_dir: Path | None = None
    bmf_path: Path | None = None
    exports: tuple[tuple[str, Path], ...] = ()  # --llem-export: (kind, path) pairs
    cycles: int | None = None  # --llem-cycles: every study's n_cycles
    on_disturbed: str | None = None  # --llem-on-disturbed: every study's validity policy
    shard: tuple[int, int] | None = None
    resume_dir: Path | None = None
    runner_cli: dict[str, str] = field(default_factory=dict)
    ab_cli: dict[str, str] = field(default_factory=dict)  # --llem-ab: arm -> runner
    runner_ini: dict[str, str] = field(default_factory=dict)
    docker: DockerOptions = field(default_factory=DockerOptions)
    sources: dict[str, str] = field(default_factory=dict)
    session_id: str = ""
    backends: BackendRegistry = BUILTIN
    xdist_dist: str | None = None  # pytest-xdist's --dist, when xdist is installed
    xdist_workers: int = 0  # pytest-xdist's -n (resolved: "auto" is a number by now)
    junit_properties: str = "testcase"
    others: OtherPlugins = field(default_factory=lambda: OtherPlugins())


def _int_or_zero(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _or(value: Any, default: Any) -> Any:
    """The value unless unset: 0 is a setting (no restarts), not a missing one."""
    return default if value is None else value


def _docker(
    values: dict[str, Any], volumes: list[str], env_lines: list[str], session_id: str
) -> DockerOptions:
    for volume in volumes:
        try:
            parse_volume(volume)
        except ValueError as exc:
            raise pytest.UsageError(f"llem_docker_volumes: {exc}") from None
    try:
        env = dict(parse_env(line) for line in env_lines)
    except ValueError as exc:
        raise pytest.UsageError(f"llem_docker_env: {exc}") from None
    cache = values["docker_hf_cache"]
    teardown = values["persistent_auto_teardown"]
    return DockerOptions(
        strategy=values["container_strategy"] or "ephemeral",
        timeout_s=values["docker_timeout"],
        hf_cache=None if cache == "none" else (cache or default_hf_cache()),
        volumes=tuple(volumes),
        env=env,
        python=values["docker_python"] or "",
        auto_teardown=True if teardown is None else bool(teardown),
        warmup_delay_s=values["persistent_warmup_delay"] or 0.0,
        max_restarts=_or(values["persistent_max_restarts"], 3),
        gpu_memory_threshold_mb=_or(values["persistent_gpu_memory_mb"], 1024.0),
        worker=bool(_or(values["persistent_worker"], True)),
        session_id=session_id,
    )


def _convert(opt: Option, raw: Any, name: str) -> Any:
    """Convert a string value; a bad one is a usage error that names the option it came from."""
    if not isinstance(raw, str):
        return raw
    try:
        return opt.convert(raw)
    except pytest.UsageError as exc:
        message = str(exc)
        raise pytest.UsageError(message if name in message else f"{name}: {message}") from None


def _lookup(config: pytest.Config, opt: Option) -> tuple[Any, str]:
    value = config.getoption(opt.dest, default=None)
    if value is not None:
        return _convert(opt, value, opt.cli), "cli"
    if opt.ini:
        raw = config.getini(opt.ini)
        if raw not in (None, ""):
            return _convert(opt, raw, f"ini {opt.ini}"), "ini"
    return None, "default"


def _runner_cli(cli: dict[str, str], backends: BackendRegistry) -> dict[str, str]:
    problem = unknown_backends(cli, backends.names)
    if problem is not None:
        raise pytest.UsageError(problem)
    return cli


def _runner_ini(
    values: dict[str, Any], lines: list[str], backends: BackendRegistry
) -> dict[str, str]:
    out = {b: values[f"runner_{b}"] for b in BUILTIN.names if values.get(f"runner_{b}")}
    for line in lines:
        backend, sep, value = (part.strip() for part in line.partition("="))
        if not sep or backend not in backends:
            raise pytest.UsageError(
                f"ini llem_runners: {line!r}: expected <backend> = <runner> with a backend of "
                f"{list(backends.names)}"
            )
        out[backend] = converters.runner_ini(value)
    return out


def resolve(config: pytest.Config, backends: BackendRegistry = BUILTIN) -> Settings:
    """Resolve every option once (cli > ini > default) into frozen Settings."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in OPTIONS:
        values[opt.name], sources[opt.name] = _lookup(config, opt)
    rootdir = Path(config.rootpath)
    here = Path(config.invocation_params.dir)

    def path(value: str | None, default: Path | None) -> Path | None:
        chosen = Path(value) if value else default
        return here / chosen if chosen is not None and not chosen.is_absolute() else chosen

    results = path(values["results"], rootdir / ".llem")
    assert results is not None
    json_path = path(values["json"], results / "report.json")
    baseline_dir = path(values["baseline_dir"], rootdir / ".llem" / "baselines")
    assert json_path is not None
    assert baseline_dir is not None
    cli_limits = config.getoption("llem_fail_on", default=None)
    ini_limits = config.getini("llem_fail_on")
    session_id = session_id_of(config)
    return Settings(
        rootdir=rootdir,
        results_dir=results,
        json_path=json_path,
        max_items=values["max_items"] or DEFAULT_MAX_POINTS,
        study_patterns=tuple(config.getini("llem_study_patterns") or DEFAULT_PATTERNS),
        energy=values["energy"],
        require_gpu=bool(values["require_gpu"]),
        timeseries=bool(values["timeseries"]),
        item_timeout_s=values["item_timeout"],
        save_baseline=values["save_baseline"],
        compare=values["compare"],
        baseline_dir=baseline_dir,
        fail_on_cli=converters.fail_on(cli_limits) if cli_limits else (),
        fail_on_ini=converters.fail_on(ini_limits) if ini_limits else (),
        require_energy=bool(values["require_energy"]),
        require_baseline=bool(values["require_baseline"]),
        inconclusive=values["inconclusive"] or "fail",
        max_cv=values["max_cv"],
        save_baseline_force=bool(values["save_baseline_force"]),
        plot_dir=path(values["plot"], None),
        bmf_path=path(values["bmf"], None),
        exports=tuple((kind, here / target) for kind, target in values["export"] or ()),
        cycles=values["cycles"],
        on_disturbed=values["on_disturbed"],
        shard=values["shard"],
        resume_dir=path(values["resume"], None),
        runner_cli=_runner_cli(values["runner"] or {}, backends),
        ab_cli=values["ab"] or {},
        runner_ini=_runner_ini(values, list(config.getini("llem_runners")), backends),
        docker=_docker(
            values,
            list(config.getini("llem_docker_volumes")),
            list(config.getini("llem_docker_env")),
            session_id,
        ),
        sources=sources,
        session_id=session_id,
        backends=backends,
        xdist_dist=config.getoption("dist", default=None),
        xdist_workers=_int_or_zero(config.getoption("numprocesses", default=None)),
        junit_properties=values["junit_properties"] or "testcase",
        others=_other_plugins(config),
    )


SESSION_ID_KEY = "llem_session_id"


def session_id_of(config: pytest.Config) -> str:
    """This run's id: the controller's on an xdist worker (sent in workerinput), else a new one."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput and workerinput.get(SESSION_ID_KEY):
        return str(workerinput[SESSION_ID_KEY])
    return f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def reorder_seed(config: pytest.Config) -> int | None:
    """The seed pytest-randomly shuffled with (read late: it resolves its seed at configure)."""
    seed = config.getoption("randomly_seed", default=None)
    return seed if isinstance(seed, int) else None
