"""Plugin overhead and model cache: a study through pytest vs the same engine calls in a bare
loop (tiny offline Llama, local runner, CPU), plus model loads counted.

Both run in one warm process, alternately, several times (the median is reported), so a
shared machine's noise hits both alike; the one-off cost of starting pytest and importing the
plugin is measured separately in fresh processes.

Run: python benchmarks/perf/bench_overhead.py [--points 6] [--n 64] [--tokens 32] [--repeats 5]
Target: the plugin adds at most 5% to the bare loop's wall time.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.pytorch.engine import TransformersEngine
from pytest_llem.testing import build_tiny_model


def study(
    model: Path, points: int, n: int, tokens: int, first_dim: str = "  precision: [fp32]"
) -> str:
    seeds = ", ".join(str(s) for s in range(points))
    return (
        f"model: {model}\ndevice: cpu\nn: {n}\nmax_output_tokens: {tokens}\n"
        "pytorch: {batch_size: 8}\nwarmup: {n_warmup: 1}\nwindow: {min_duration_s: 0}\n"
        f"validity: {{min_window_s: 0}}\nsweep:\n{first_dim}\n  random_seed: [{seeds}]\n"
    )


def bare_loop(model: Path, points: int, n: int, tokens: int) -> None:
    """What the study asks for, without pytest: load once, then per point warmup + one pass."""
    configs = [
        BuiltinConfig(
            model=str(model),
            device="cpu",
            precision="fp32",
            n=n,
            max_output_tokens=tokens,
            random_seed=seed,
            pytorch={"batch_size": 8},
        )
        for seed in range(points)
    ]
    engine = TransformersEngine.load(configs[0])
    for config in configs:
        batches = engine.batches(engine.requests(config), config)
        engine.generate(batches[0], config)
        for batch in batches:
            engine.generate(batch, config)
    engine.close()


def run_pytest(args: list[str]) -> int:
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = int(pytest.main(args))
    if code != 0:
        print(out.getvalue()[-3000:])
        raise SystemExit(f"pytest failed with exit code {code}")
    return code


def fresh(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def loads(report: Path) -> tuple[int, int]:
    items = json.loads(report.read_text())["items"]
    return len(items), sum(1 for i in items if not i["model_cached"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=6)
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = build_tiny_model("llama", tmp / "model")
        bare_loop(model, 1, 8, 2)  # warm the imports for both sides
        overhead: dict[int, float] = {}
        for points in (args.points, 2 * args.points):
            path = tmp / "study_overhead.yaml"
            path.write_text(study(model, points, args.n, args.tokens))
            pytest_args = [
                str(path),
                "-q",
                "-p",
                "no:cacheprovider",
                f"--rootdir={tmp}",
                f"--llem-results={tmp / 'out'}",
                "--llem-energy=null",
            ]
            bare, plugin = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                bare_loop(model, points, args.n, args.tokens)
                bare.append(time.perf_counter() - start)
                start = time.perf_counter()
                run_pytest(pytest_args)
                plugin.append(time.perf_counter() - start)
            b, p = statistics.median(bare), statistics.median(plugin)
            overhead[points] = p - b
            print(
                f"{points} points, n={args.n}, {args.tokens} output tokens, median of {args.repeats} (warm process)"
            )
            print(f"  bare engine loop: {b:6.2f} s   (runs: {', '.join(f'{x:.2f}' for x in bare)})")
            print(
                f"  through pytest:   {p:6.2f} s   (runs: {', '.join(f'{x:.2f}' for x in plugin)})"
            )
            print(f"  plugin overhead:  {p - b:+6.2f} s = {(p - b) / b:+.1%}")
        per_item = (overhead[2 * args.points] - overhead[args.points]) / args.points
        print(
            f"per item: {per_item * 1000:+.0f} ms; per session: {overhead[args.points] - args.points * per_item:+.2f} s "
            "(pytest's session machinery, incl. its garbage collection at exit)"
        )
        items, n_loads = loads(tmp / "out" / "report.json")
        print(
            f"model cache: {items} items that differ only in generation settings -> {n_loads} model load(s)"
        )
        two = tmp / "study_two.yaml"
        two.write_text(
            study(model, 3, 8, 4, "  precision: [fp32, bf16]")
        )  # precision first: grouped
        run_pytest(
            [
                str(two),
                "-q",
                "-p",
                "no:cacheprovider",
                f"--rootdir={tmp}",
                f"--llem-results={tmp / 'two'}",
                "--llem-energy=null",
            ]
        )
        items, n_loads = loads(tmp / "two" / "report.json")
        print(f"model cache: {items} items over 2 precisions -> {n_loads} model load(s)")
        starts = [
            fresh(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    str(path),
                    "--collect-only",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    f"--rootdir={tmp}",
                ]
            )
            for _ in range(3)
        ]
        bases = [fresh([sys.executable, "-c", "import pytest"]) for _ in range(3)]
        print(
            f"one-off per session (fresh process): pytest + plugins start-up and collection "
            f"{min(starts):.2f} s vs {min(bases):.2f} s to import pytest alone"
        )


if __name__ == "__main__":
    main()
