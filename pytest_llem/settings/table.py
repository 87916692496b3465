"""The table of every --llem-* option and ini key: flag, ini key, converter and help.

``resolve.py`` registers it with pytest and resolves it into frozen ``Settings``. Each row also
says how the manual's options reference (``reference.py``) shows it: its topic (``group``), the
form of its value (``type``) and its default as ``resolve()`` resolves it (``default``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any

from pytest_llem.engines.builtin import BUILTIN
from pytest_llem.settings import converters
from pytest_llem.study.expand import DEFAULT_MAX_POINTS

DEFAULT_PATTERNS = ("study_*.yaml", "study_*.yml")


# The topics of the options reference, in the order the manual shows them.
GROUPS = (
    "Results and reports",
    "Measurement",
    "Execution and scale",
    "Regression gate",
    "Runners",
    "Containers",
    "Exports",
)
OFF = "off"  # the default of a setting that does nothing unless given


@dataclass(frozen=True)
class Option:
    """One setting: its command-line flag, ini key, converter and help, and for the manual its
    topic (one of ``GROUPS``), the form of its value and its default (markdown: `code` spans)."""

    name: str
    help: str
    _: KW_ONLY
    group: str  # required: a new option cannot be left out of the reference's topics
    default: str
    ini: str | None = None
    convert: Callable[[str], Any] = converters.text
    flag: bool = False
    metavar: str | None = None
    has_cli: bool = True
    type: str | None = None  # None: named after the converter (reference.CONVERTER_TYPES)

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"option {self.name!r}: group {self.group!r} is not one of {GROUPS}")
        if not self.default.strip():
            raise ValueError(f"option {self.name!r}: give its default (or {OFF!r})")

    @property
    def cli(self) -> str:
        return "--llem-" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return "llem_" + self.name


OPTIONS: tuple[Option, ...] = (
    Option(
        "results",
        "directory for results.jsonl and the JSON report (default: <rootdir>/.llem)",
        ini="llem_results_dir",
        metavar="DIR",
        group="Results and reports",
        default="`<rootdir>/.llem`",
        type="directory",
    ),
    Option(
        "json",
        "path of the JSON report (default: <results>/report.json)",
        metavar="PATH",
        group="Results and reports",
        default="`<results>/report.json`",
        type="path",
    ),
    Option(
        "max_items",
        f"refuse study grids larger than N points (default {DEFAULT_MAX_POINTS})",
        ini="llem_max_items",
        convert=converters.positive_int,
        metavar="N",
        group="Execution and scale",
        default=f"`{DEFAULT_MAX_POINTS}`",
    ),
    Option(
        "energy",
        "energy source for every item: auto|nvml|zeus|rapl|null (overrides energy.backend)",
        ini="llem_energy",
        convert=converters.energy,
        metavar="SOURCE",
        group="Measurement",
        default="the study's `energy.backend` (`auto`)",
    ),
    Option(
        "require_gpu",
        "fail (instead of skip) items whose GPU or requested energy source is missing",
        ini="llem_require_gpu",
        convert=converters.boolean,
        flag=True,
        group="Measurement",
        default="`false`",
    ),
    Option(
        "save_baseline",
        "store this session's results as baseline NAME",
        metavar="NAME",
        group="Regression gate",
        default=OFF,
        type="name",
    ),
    Option(
        "cycles",
        "run every study's configs N cycles, overriding execution.n_cycles (a gate needs "
        "several: a baseline saved from fewer than 3 is refused)",
        ini="llem_cycles",
        convert=converters.positive_int,
        metavar="N",
        group="Execution and scale",
        default="the study's `execution.n_cycles` (`1`)",
    ),
    Option(
        "on_disturbed",
        "what a window measured on a disturbed machine does, for every study of the run: "
        "warn (keep it, flagged), retry (measure again after a backoff, then fail) or fail",
        ini="llem_on_disturbed",
        convert=converters.on_disturbed,
        metavar="POLICY",
        group="Measurement",
        default="the study's `validity.on_disturbed` (`retry`)",
    ),
    Option(
        "compare",
        "compare every item with baseline NAME (or a path to a baseline file)",
        ini="llem_compare",
        metavar="NAME",
        group="Regression gate",
        default=OFF,
        type="name or path",
    ),
    Option(
        "baseline_dir",
        "directory of named baselines (default: <rootdir>/.llem/baselines)",
        ini="llem_baseline_dir",
        metavar="DIR",
        group="Regression gate",
        default="`<rootdir>/.llem/baselines`",
        type="directory",
    ),
    Option(
        "fail_on",
        "gate limits, e.g. 'energy_per_output_token_j>5%,latency_p99_s<2.0' (N% = relative "
        "regression vs the baseline; <V a ceiling; >V a floor)",
        ini="llem_fail_on",
        convert=converters.fail_on,
        metavar="LIMITS",
        group="Regression gate",
        default="the study's `gate:` limits, else none",
    ),
    Option(
        "require_energy",
        "fail items that measured no energy, and gated energy metrics that could not be "
        "compared (none measured, or none in the baseline)",
        ini="llem_require_energy",
        convert=converters.boolean,
        flag=True,
        group="Regression gate",
        default="`false`",
    ),
    Option(
        "require_baseline",
        "fail items that have no baseline entry to compare with (none saved, saved for other "
        "hardware, or for another config of the point)",
        ini="llem_require_baseline",
        convert=converters.boolean,
        flag=True,
        group="Regression gate",
        default="`false`",
    ),
    Option(
        "inconclusive",
        "what a relative limit the data cannot decide (beyond it but not significant, or too "
        "few cycles) does to the item: fail (default) or warn",
        ini="llem_inconclusive",
        convert=converters.inconclusive,
        metavar="fail|warn",
        group="Regression gate",
        default="`fail`",
    ),
    Option(
        "max_cv",
        "cycle-to-cycle CV beyond which a config is unstable (default: the study's "
        "gate.max_cv, else 5%)",
        ini="llem_max_cv",
        convert=converters.percentage,
        has_cli=False,
        group="Regression gate",
        default="the study's `gate.max_cv`, else `5%`",
    ),
    Option(
        "save_baseline_force",
        "save the baseline even when some configs' cycles vary beyond max_cv",
        flag=True,
        group="Regression gate",
        default="`false`",
    ),
    Option(
        "plot",
        "write PNG plots (energy per token, throughput) into DIR",
        metavar="DIR",
        group="Exports",
        default=OFF,
        type="directory",
    ),
    Option(
        "bmf",
        "also export results in Bencher Metric Format (JSON) to PATH",
        metavar="PATH",
        group="Exports",
        default=OFF,
        type="path",
    ),
    Option(
        "export",
        "also export results for trend charts: github-benchmark=DIR (github-action-benchmark's "
        "custom JSON, one file of smaller-is-better and one of bigger-is-better metrics) and/or "
        "bmf=PATH (Bencher Metric Format), comma separated",
        ini="llem_export",
        convert=converters.exports,
        metavar="KIND=PATH",
        group="Exports",
        default=OFF,
    ),
    Option(
        "shard",
        "run only shard K of N (deterministic, balanced, cycles kept together)",
        convert=converters.shard,
        metavar="K/N",
        group="Execution and scale",
        default=OFF,
    ),
    Option(
        "resume",
        "reuse results of passed items from DIR/results.jsonl instead of re-running",
        metavar="DIR",
        group="Execution and scale",
        default=OFF,
        type="directory",
    ),
    Option(
        "runner",
        "where items run: local | docker | docker:<image> | python:<interpreter>, for every "
        "backend, or per backend as vllm=docker,pytorch=local",
        convert=converters.runner_cli,
        metavar="RUNNER",
        group="Runners",
        default="the study's `runners:` or ini, else `local` (multi-backend study: `docker`)",
    ),
    Option(
        "ab",
        "the runners of an A/B study's arms, overriding its ab: block, as one quoted value: "
        "--llem-ab 'reference=docker:app:1.0 candidate=docker:app:1.1'",
        convert=converters.ab_runners,
        metavar="ARMS",
        group="Runners",
        default="the study's `ab:` block",
    ),
    # One ini key per built-in backend; any backend (a plugin's too) in llem_runners.
    *(
        Option(
            f"runner_{spec.name}",
            f"runner of backend {spec.name}",
            ini=f"llem_runner_{spec.name}",
            convert=converters.runner_ini,
            has_cli=False,
            group="Runners",
            default="`local` (multi-backend study: `docker`)",
        )
        for spec in BUILTIN
    ),
    Option(
        "container_strategy",
        "ephemeral (a container per item, default) or persistent "
        "(one container per backend and image, a warm worker runs every item)",
        ini="llem_container_strategy",
        convert=converters.strategy,
        metavar="STRATEGY",
        group="Containers",
        default="`ephemeral`",
    ),
    Option(
        "docker_timeout",
        "seconds before an item's container is killed (default: from n and max_output_tokens)",
        ini="llem_docker_timeout",
        convert=converters.number,
        has_cli=False,
        group="Containers",
        default="from `n` and `max_output_tokens`",
        type="seconds",
    ),
    Option(
        "docker_hf_cache",
        "host Hugging Face cache mounted into containers ('none' to skip)",
        ini="llem_docker_hf_cache",
        has_cli=False,
        group="Containers",
        default="`$HF_HOME`, else `~/.cache/huggingface`, if it exists",
        type="path or none",
    ),
    Option(
        "docker_python",
        "python command inside images (default: the one in the image's CMD, else python3)",
        ini="llem_docker_python",
        has_cli=False,
        group="Containers",
        default="the one in the image's `CMD`, else `python3`",
        type="command",
    ),
    Option(
        "persistent_auto_teardown",
        "remove persistent containers at session end (default true)",
        ini="llem_persistent_auto_teardown",
        convert=converters.boolean,
        flag=True,
        has_cli=False,
        group="Containers",
        default="`true`",
    ),
    Option(
        "persistent_warmup_delay",
        "seconds to wait after starting a persistent container",
        ini="llem_persistent_warmup_delay",
        convert=converters.number,
        has_cli=False,
        group="Containers",
        default="`0`",
        type="seconds",
    ),
    Option(
        "persistent_max_restarts",
        "restarts of an unhealthy persistent container (default 3)",
        ini="llem_persistent_max_restarts",
        convert=converters.non_negative_int,
        has_cli=False,
        group="Containers",
        default="`3`",
    ),
    Option(
        "persistent_worker",
        "keep the engine loaded across items in a persistent container (default true; false: "
        "a new process per item)",
        ini="llem_persistent_worker",
        convert=converters.boolean,
        flag=True,
        has_cli=False,
        group="Containers",
        default="`true`",
    ),
    Option(
        "persistent_gpu_memory_mb",
        "GPU memory (MB) a persistent container may still hold between items (default 1024)",
        ini="llem_persistent_gpu_memory_mb",
        convert=converters.number,
        has_cli=False,
        group="Containers",
        default="`1024`",
        type="number (MB)",
    ),
    Option(
        "item_timeout",
        "seconds before an item fails as hung (study execution.timeout_s wins; needs "
        "pytest-timeout)",
        ini="llem_item_timeout",
        convert=converters.positive_number,
        has_cli=False,
        group="Execution and scale",
        default=OFF,
        type="seconds > 0",
    ),
    Option(
        "junit_properties",
        "where JUnit XML gets each item's llem.* properties: testcase (default; pytest's "
        "xunit2 schema has no testcase properties) or suite (testsuite properties named "
        "<nodeid>::llem.<name>, valid xunit2)",
        ini="llem_junit_properties",
        convert=converters.junit_mode,
        metavar="WHERE",
        group="Results and reports",
        default="`testcase`",
    ),
    Option(
        "timeseries",
        "save every item's power/thermal samples as JSONL under <results>/timeseries",
        ini="llem_timeseries",
        convert=converters.boolean,
        flag=True,
        group="Measurement",
        default="`false`",
    ),
)
