"""``python -m pytest_llem validate``: build, measure, cross-check, report.

What it does, what it needs and what ``--device cpu`` means are in ``DESCRIPTION``, the text
``--help`` prints. Exits 0 when every window and every config is inside the tolerances, 1
otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llem.cli.validate.analysis import (
    Tolerances,
    ValidationReport,
    check_windows,
    config_figures,
    counter_periods,
    failures,
    idle_power,
    item_flags,
)
from pytest_llem.cli.validate.llama import SHAPES, build_random_llama
from pytest_llem.cli.validate.probe import IndependentProbe, ProbeRecord
from pytest_llem.cli.validate.render import markdown
from pytest_llem.energy import nvml

MIN_CYCLES = 5
DEFAULT_SHAPES = ("1b", "8b")

DESCRIPTION = f"""\
Check pytest-llem's energy measurement on this machine against an independent
reader, with no model hub. For each shape, a random-weight Llama of real
dimensions is built, a study runs through the plugin (several cycles, two or
more batch sizes), and meanwhile a separate process reads every GPU's NVML
energy counter and instant power. The report answers a reviewer's first
questions: how much energy varies from cycle to cycle, and whether the
plugin's window energy agrees with the independent integration of power over
the same window (and with Zeus, when it is installed).

Needs an NVIDIA GPU with its driver (NVML), the pytorch extra with a CUDA
build of torch, and tokenizers. Energy is read from the GPU only: with
--device cpu the model runs on the CPU, no GPU is measured, every study item
is skipped and the verdict is FAIL. That mode exercises the kit's plumbing
(its tests use it against a fake GPU); it validates nothing.

Writes validation.md and validation.json into --out, with each shape's model,
study and results in a folder beside them. Exit status: 0 when every window
and every config is inside the tolerances; 1 otherwise; 2 on a usage error.

examples:
  python -m pytest_llem validate         # 1b and 8b, {MIN_CYCLES} cycles, batch sizes 1 and 8
  python -m pytest_llem validate --shape 1b --cycles 10 --out /tmp/llem-validate
"""


def _cycles(text: str) -> int:
    """``--cycles``: an integer of at least ``MIN_CYCLES``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer: {text!r}") from None
    if value < MIN_CYCLES:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_CYCLES} (a CV from fewer says little), not {value}"
        )
    return value


def _batch_sizes(text: str) -> list[int]:
    """``--batch-sizes``: at least two comma-separated integers."""
    try:
        sizes = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated integers: {text!r}") from None
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(f"needs at least two values, not {text!r}")
    return sizes


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Register the options of ``validate`` on ``p`` (the tolerances as a group of their own)."""
    p.add_argument(
        "--shape",
        action="append",
        choices=sorted(SHAPES),
        help="model dimensions to build: 1b (Llama 3.2 1B), 8b (Llama 3.1 8B), tiny (two "
        "small layers, for tests); repeat for several (default: 1b and 8b)",
    )
    p.add_argument(
        "--cycles",
        type=_cycles,
        default=MIN_CYCLES,
        metavar="N",
        help=f"cycles of every config, at least {MIN_CYCLES}: the energy CV across them is "
        "checked (default: %(default)s)",
    )
    p.add_argument(
        "--batch-sizes",
        type=_batch_sizes,
        default="1,8",
        metavar="LIST",
        help="comma-separated batch sizes swept, at least two (default: %(default)s)",
    )
    p.add_argument(
        "--device",
        default="cuda",
        choices=["cuda", "cpu"],
        help="where the model runs: cuda measures the GPU; cpu measures nothing (every item "
        "is skipped: a check of the kit itself) (default: %(default)s)",
    )
    p.add_argument(
        "--precision",
        default="bf16",
        choices=["bf16", "fp16", "fp32"],
        help="dtype the study loads and runs the model in (default: %(default)s)",
    )
    _add_workload_arguments(p)
    p.add_argument(
        "--zeus",
        choices=["auto", "on", "off"],
        default="auto",
        help="read Zeus beside NVML over the same windows (auto: when zeus is installed) "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("llem-validate"),
        metavar="DIR",
        help="directory for validation.md, validation.json and each shape's model, study and "
        "results (default: %(default)s)",
    )
    _add_tolerance_arguments(p)


def _add_workload_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--n",
        type=int,
        default=64,
        metavar="PROMPTS",
        help="prompts per pass of the measured window (default: %(default)s)",
    )
    p.add_argument(
        "--input-len",
        type=int,
        default=128,
        metavar="TOKENS",
        help="length of each synthetic prompt, in tokens (default: %(default)s)",
    )
    p.add_argument(
        "--max-output-tokens",
        type=int,
        default=128,
        metavar="TOKENS",
        help="tokens generated per prompt; random weights never stop early, so every prompt "
        "generates exactly this many (default: %(default)s)",
    )
    p.add_argument(
        "--window-s",
        type=float,
        default=10.0,
        metavar="S",
        help="minimum length of each measured window, in seconds: the prompts repeat until "
        "it is reached (default: %(default)s)",
    )
    p.add_argument(
        "--thermal-max-s",
        type=float,
        default=60.0,
        metavar="S",
        help="longest warm-up, in seconds, while waiting for the GPU's temperature to settle "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--interval-ms",
        type=float,
        default=10.0,
        metavar="MS",
        help="how often the independent process reads every GPU, in milliseconds "
        "(default: %(default)s)",
    )
    p.add_argument(
        "--idle-s",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds the independent process reads the idle GPU before each shape's study "
        "(default: %(default)s)",
    )


def _add_tolerance_arguments(p: argparse.ArgumentParser) -> None:
    limits = p.add_argument_group(
        "tolerances, in percent",
        "exit 1 when any is exceeded; the defaults hold for windows of 10 s or more",
    )
    default = Tolerances()
    limits.add_argument(
        "--max-window-diff-pct",
        type=float,
        default=default.window_diff_pct,
        metavar="PCT",
        help="plugin's window energy vs the independent integration of instant power, per "
        "window (default: %(default)s)",
    )
    limits.add_argument(
        "--max-cv-pct",
        type=float,
        default=default.cv_pct,
        metavar="PCT",
        help="energy CV across cycles, per config (default: %(default)s)",
    )
    limits.add_argument(
        "--max-zeus-diff-pct",
        type=float,
        default=default.zeus_diff_pct,
        metavar="PCT",
        help="Zeus vs NVML over the same window, per window (default: %(default)s)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m pytest_llem validate",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def _finish(args: argparse.Namespace) -> argparse.Namespace:
    """Defaults ``append`` cannot hold (it would add to a default list, not replace it)."""
    args.shape = args.shape or list(DEFAULT_SHAPES)
    return args


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments (see ``DESCRIPTION``)."""
    return _finish(_parser().parse_args(argv))


def study_text(args: argparse.Namespace, name: str, model: Path, zeus: bool) -> str:
    """A GPU study: random weights cannot stop early, since min_new_tokens = max tokens.

    NVML measures every window; with ``zeus``, Zeus reads the same windows beside it.
    """
    m = args.max_output_tokens
    crosscheck = ", crosscheck: zeus" if zeus else ""
    return (
        f"name: validate-{name}\nmodel: {model}\nbackend: pytorch\ndevice: {args.device}\n"
        f"precision: {args.precision}\nn: {args.n}\n"
        f"dataset: {{source: synthetic, input_len: {args.input_len}}}\n"
        f"max_input_tokens: {args.input_len}\nmax_output_tokens: {m}\n"
        f"decoder: {{min_new_tokens: {m}}}\nwarmup: {{n_warmup: 2}}\n"
        f"window: {{min_duration_s: {args.window_s}}}\nthermal: {{max_s: {args.thermal_max_s}}}\n"
        f"execution: {{n_cycles: {args.cycles}, cycle_order: interleaved}}\n"
        f"energy: {{backend: nvml{crosscheck}}}\n"
        f"sweep:\n  pytorch.batch_size: {args.batch_sizes}\n"
    )


def run_study(study: Path, results: Path, require_gpu: bool) -> list[dict[str, Any]]:
    """Run the study through the plugin (in this process) and return its report items."""
    import pytest

    ini = study.parent / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")  # the caller's project config stays out
    argv = [str(study), "-c", str(ini), "--rootdir", str(study.parent), "-p", "no:cacheprovider"]
    argv += ["-q", f"--llem-results={results}", "--llem-timeseries"]
    if require_gpu:
        argv.append("--llem-require-gpu")
    pytest.main(argv)
    report = results / "report.json"
    if not report.exists():
        return []
    items: list[dict[str, Any]] = json.loads(report.read_text(encoding="utf-8"))["items"]
    return items


def machine() -> dict[str, Any]:
    """GPU, driver and software versions, as NVML and Python report them."""

    def gpus(pynvml: Any) -> dict[str, Any]:
        handles = nvml.all_handles(pynvml)
        return {
            "driver": nvml.as_text(pynvml.nvmlSystemGetDriverVersion()),
            "gpus": ", ".join(nvml.as_text(pynvml.nvmlDeviceGetName(h)) for _, h in handles),
        }

    info: dict[str, Any] = nvml.query(gpus, {"gpus": f"none ({nvml.probe_reason()})"})
    info["python"] = platform.python_version()
    try:
        import torch

        info["torch"] = f"{torch.__version__} (CUDA {torch.version.cuda})"
    except ImportError:
        pass
    return info


def validate(args: argparse.Namespace) -> ValidationReport:
    """Build each shape, run its study under the independent probe, and analyse."""
    args.out.mkdir(parents=True, exist_ok=True)
    tolerances = Tolerances(
        window_diff_pct=args.max_window_diff_pct,
        cv_pct=args.max_cv_pct,
        zeus_diff_pct=args.max_zeus_diff_pct,
    )
    report = ValidationReport(machine=machine(), tolerances=tolerances)
    zeus = args.zeus == "on" or (args.zeus == "auto" and bool(importlib.util.find_spec("zeus")))
    for name in args.shape:
        work = args.out / name
        model = build_random_llama(SHAPES[name], work / "model", args.device)
        study = work / f"study_validate_{name}.yaml"
        study.write_text(study_text(args, name, model, zeus), encoding="utf-8")
        probe = IndependentProbe(work / "probe.jsonl", args.interval_ms / 1000.0)
        probe.start()
        time.sleep(args.idle_s)  # the idle GPU, as the independent process sees it
        started = time.perf_counter()
        items = run_study(study, work / "results", require_gpu=args.device == "cuda")
        records: list[ProbeRecord] = probe.stop()
        report.power_sources.update(probe.power_sources)
        report.counter_periods += counter_periods(records)
        report.idle_power_w_probe.update(
            {f"{name}:{d}": w for d, w in idle_power(records, started).items()}
        )
        baselines = [(i.get("energy") or {}).get("baseline_w") for i in items]
        report.idle_power_w_plugin = next((b for b in baselines if b is not None), None)
        report.configs += [
            c.model_copy(update={"config": f"{name} {c.config}"})
            for c in config_figures(items, records)
        ]
        report.windows += [
            w.model_copy(update={"point_id": f"{name} {w.point_id}"})
            for w in check_windows(items, records)
        ]
        report.flags += [
            f.model_copy(update={"point_id": f"{name} {f.point_id}"}) for f in item_flags(items)
        ]
        if not items:
            report.notes.append(f"{name}: the study produced no report (see the output above)")
    if not zeus:
        why = "--zeus off" if args.zeus == "off" else "Zeus is not installed"
        report.notes.append(f"{why}: no Zeus vs NVML comparison")
    if any(
        not source.startswith("NVML_FI_DEV_POWER_INSTANT")
        for source in report.power_sources.values()
    ):
        report.notes.append(
            "the independent integration used averaged power on some GPU (see power sources): "
            "its window figures lag the window"
        )
    report.failures = failures(report)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pytest_llem validate`` on its own (``run`` does the work)."""
    return run(parse(argv))


def run(args: argparse.Namespace) -> int:
    """Validate, write ``validation.md`` and ``.json`` into ``--out``; 0 on a pass, else 1."""
    args = _finish(args)
    report = validate(args)
    text = markdown(report)
    (args.out / "validation.md").write_text(text, encoding="utf-8")
    (args.out / "validation.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    sys.stdout.write(text)
    print(f"written: {args.out / 'validation.md'}, {args.out / 'validation.json'}")
    return 0 if report.passed else 1
