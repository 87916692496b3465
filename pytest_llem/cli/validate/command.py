"""``python -m pytest_llem validate``: build, measure, cross-check, report.

    python -m pytest_llem validate                  # 1B and 8B shapes, 5 cycles, bs 1 and 8
    python -m pytest_llem validate --shape 1b --cycles 10 --out /tmp/llem-validate

Needs an NVIDIA GPU, the ``pytorch`` extra with a CUDA torch, and ``tokenizers``; no model hub.
Exits 0 when every window and every config is inside the tolerances, 1 otherwise.
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
)
from pytest_llem.cli.validate.llama import SHAPES, build_random_llama
from pytest_llem.cli.validate.probe import IndependentProbe, ProbeRecord
from pytest_llem.cli.validate.render import markdown
from pytest_llem.energy import nvml

MIN_CYCLES = 5


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line arguments (see the module docstring)."""
    p = argparse.ArgumentParser(prog="python -m pytest_llem validate", description=__doc__)
    p.add_argument("--shape", action="append", choices=sorted(SHAPES), help="1b, 8b (repeat)")
    p.add_argument("--cycles", type=int, default=MIN_CYCLES)
    p.add_argument("--batch-sizes", default="1,8", help="comma-separated, at least two")
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--precision", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--thermal-max-s", type=float, default=60.0, help="bound on warmup until steady")
    p.add_argument("--n", type=int, default=64, help="prompts per pass of the window")
    p.add_argument("--input-len", type=int, default=128)
    p.add_argument("--max-output-tokens", type=int, default=128)
    p.add_argument("--window-s", type=float, default=10.0, help="minimum measured window")
    p.add_argument("--interval-ms", type=float, default=10.0, help="independent probe period")
    p.add_argument("--idle-s", type=float, default=5.0, help="probe the idle GPU first")
    p.add_argument(
        "--zeus",
        choices=["auto", "on", "off"],
        default="auto",
        help="read Zeus beside NVML over the same windows (auto: when zeus is installed)",
    )
    p.add_argument("--out", type=Path, default=Path("llem-validate"))
    limits = p.add_argument_group(
        "tolerances (exit 1 when any is exceeded; defaults for windows of 10 s or more)"
    )
    default = Tolerances()
    limits.add_argument(
        "--max-window-diff-pct",
        type=float,
        default=default.window_diff_pct,
        help="plugin's window energy vs the independent integration of instant power, per "
        "window (default: %(default)s)",
    )
    limits.add_argument(
        "--max-cv-pct",
        type=float,
        default=default.cv_pct,
        help="energy CV across cycles, per config (default: %(default)s)",
    )
    limits.add_argument(
        "--max-zeus-diff-pct",
        type=float,
        default=default.zeus_diff_pct,
        help="Zeus vs NVML over the same window, per window (default: %(default)s)",
    )
    args = p.parse_args(argv)
    args.shape = args.shape or ["1b", "8b"]
    args.batch_sizes = [int(b) for b in str(args.batch_sizes).split(",") if b.strip()]
    if args.cycles < MIN_CYCLES:
        p.error(f"--cycles must be at least {MIN_CYCLES} (a CV from fewer says little)")
    if len(args.batch_sizes) < 2:
        p.error("--batch-sizes needs at least two values")
    return args


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
    """Entry point of ``python -m pytest_llem validate``."""
    args = parse(argv)
    report = validate(args)
    text = markdown(report)
    (args.out / "validation.md").write_text(text, encoding="utf-8")
    (args.out / "validation.json").write_text(report.model_dump_json(indent=2), encoding="utf-8")
    sys.stdout.write(text)
    print(f"written: {args.out / 'validation.md'}, {args.out / 'validation.json'}")
    return 0 if report.passed else 1
