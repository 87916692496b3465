"""Same-session A/B against a machine whose load switches on and off: measured, not simulated.

A background load keeps both cores busy for ``--period`` seconds, then leaves them idle for as
long, and again. Under it, real pytest sessions of the tiny offline model run:

1. the reference configuration alone, saved as a stored baseline (the way a nightly would);
2. an A/A study (the same configuration in both arms, ``ab: {calibrate: true}``) with a wide
   limit: the paired gate should pass it;
3. an A/B study whose candidate is slower (fewer prompts per generate call), with a 10% limit:
   the paired gate should fail it.

Beside each paired verdict, the stored-baseline gate (the real ``gate.verdict.evaluate``) judges
the same candidate-arm cycles against the baseline of step 1, which ran under another phase of
the load. Every verdict comes from the plugin's report; nothing is computed by hand.

Run: python benchmarks/perf/bench_ab_drift.py [--period 40] [--cycles 8] [--window 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_llem.gate.baseline_file import load as load_baseline
from pytest_llem.gate.thresholds import parse_fail_on
from pytest_llem.gate.verdict import evaluate
from pytest_llem.study.sections import SignificanceConfig
from pytest_llem.testing import build_tiny_model

METRIC = "output_tokens_per_s"


def _burn(stop: Any) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def load_switch(period_s: float, stop: Any) -> None:
    """Both cores busy for ``period_s``, idle for ``period_s``, until ``stop``."""
    while not stop.is_set():
        halt = multiprocessing.Event()  # each busy phase ends on its own event
        burners = [
            multiprocessing.Process(target=_burn, args=(halt,), daemon=True)
            for _ in range(os.cpu_count() or 2)
        ]
        for b in burners:
            b.start()
        stop.wait(period_s)
        halt.set()
        for b in burners:
            b.join()
        stop.wait(period_s)


def study(model: Path, cycles: int, window_s: float, limit: str, ab: str) -> str:
    return (
        f"model: {model}\ndevice: cpu\nprecision: fp32\nn: 8\nmax_output_tokens: 8\n"
        "max_input_tokens: 16\ndataset: {source: synthetic, input_len: 8}\n"
        f"warmup: {{n_warmup: 2}}\nwindow: {{min_duration_s: {window_s}}}\n"
        "validity: {min_window_s: 0, min_samples: 0}\n"
        f"execution: {{n_cycles: {cycles}}}\npytorch: {{batch_size: 2}}\n"
        f"gate: {{max_regression: {{{METRIC}: {limit}}}}}\n{ab}"
    )


def run(workdir: Path, name: str, text: str, *args: str) -> dict[str, Any]:
    (workdir / f"study_{name}.yaml").write_text(text)
    out = workdir / f"out_{name}"
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            f"study_{name}.yaml",
            "-p",
            "no:cacheprovider",
            f"--llem-results={out}",
            *args,
        ],
        cwd=workdir,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        check=False,
    )
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    report["_wall_s"] = time.monotonic() - started
    return report


def paired_verdict(report: dict[str, Any]) -> dict[str, Any]:
    final = [i for i in report["items"] if i.get("gate") and i["gate"]["status"] != "pending"]
    return final[-1]["gate"]["comparisons"][0]


def stored_verdict(report: dict[str, Any], baseline: Path, limit: str) -> str:
    """The stored-baseline gate on the candidate arm's cycles of the same session."""
    entry = load_baseline(baseline).entries[0]
    cand = [i["metrics"][METRIC] for i in report["items"] if i.get("arm") == "candidate"]
    verdict = evaluate(
        parse_fail_on(f"{METRIC}>{limit}"),
        {METRIC: cand[-1]},
        {METRIC: cand},
        entry.samples,
        True,
        SignificanceConfig(),
    )
    comp = verdict.comparisons[0]
    return f"{verdict.status} ({comp.delta_pct:+.1f}%, p={comp.p_value:.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--period", type=float, default=40.0, help="seconds on, then off")
    parser.add_argument("--cycles", type=int, default=8)
    parser.add_argument("--window", type=float, default=3.0, help="window.min_duration_s")
    parser.add_argument(
        "--candidate",
        default="{pytorch.batch_size: 1}",
        help="the slower candidate's overrides, a YAML flow mapping (default: twice as slow)",
    )
    parser.add_argument("--reference", default="{}", help="the reference arm's overrides")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="llem-ab-drift-"))
    model = build_tiny_model("gpt2", workdir / "tiny")
    stop = multiprocessing.Event()
    # Not daemonic: a daemonic process may not start the burners.
    switcher = multiprocessing.Process(target=load_switch, args=(args.period, stop))
    switcher.start()
    try:
        same = "ab:\n  calibrate: true\n  reference: {}\n  candidate: {}\n"
        slower = f"ab:\n  reference: {args.reference}\n  candidate: {args.candidate}\n"
        plain = study(model, args.cycles, args.window, "10%", "")
        base = run(workdir, "ref", plain, "--llem-save-baseline=ref", "--llem-save-baseline-force")
        baseline = workdir / ".llem" / "baselines" / "ref.json"
        rows = []
        for name, limit, ab in (("aa", "25%", same), ("slower", "10%", slower)):
            report = run(workdir, name, study(model, args.cycles, args.window, limit, ab))
            comp = paired_verdict(report)
            rows.append(
                (
                    name,
                    limit,
                    f"{comp['status']} (ratio {comp['ratio']:.3f}, "
                    f"CI [{comp['ci'][0]:.3f}, {comp['ci'][1]:.3f}], pairs' spread "
                    f"{comp['pairs_cv']:.1%}, {comp['test']} p={comp['p_value']:.3g}) "
                    f"[{comp['kind']}]",
                    stored_verdict(report, baseline, limit),
                    report["_wall_s"],
                )
            )
    finally:
        stop.set()
        switcher.join(timeout=args.period * 3)
    print(
        f"background load: {os.cpu_count()} busy processes {args.period:g} s on, "
        f"{args.period:g} s off; {args.cycles} cycles; window {args.window:g} s; reference "
        f"baseline saved in {base['_wall_s']:.0f} s; slower candidate {args.candidate} "
        f"against {args.reference}"
    )
    print("| study | limit | paired gate (A/B, this session) | stored-baseline gate | wall s |")
    print("|---|---|---|---|---:|")
    for name, limit, paired, stored, wall in rows:
        print(f"| {name} | {limit} | {paired} | {stored} | {wall:.0f} |")


if __name__ == "__main__":
    main()
