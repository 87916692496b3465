"""Plugin overhead and model cache: a study through pytest vs the same engine calls in a bare
loop (tiny offline Llama, local runner, CPU), each in a fresh process, plus model loads counted.

Run: python benchmarks/perf/bench_overhead.py [--points 6] [--n 64] [--tokens 32]
Target: the plugin adds at most 5% to the bare loop's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from pytest_llem.testing import build_tiny_model

BARE = textwrap.dedent("""
    import sys, time
    from pytest_llem.engines.transformers import TransformersEngine
    from pytest_llem.study.model import ExperimentConfig
    model, points, n, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    configs = [ExperimentConfig(model=model, device="cpu", precision="fp32", n=n, max_output_tokens=tokens,
                                random_seed=seed, pytorch={"batch_size": 8}) for seed in range(points)]
    engine = TransformersEngine.load(configs[0])
    for config in configs:
        batches = engine.batches(engine.requests(config), config)
        engine.generate(batches[0], config)          # warmup: one batch, as the study says
        for batch in batches:                        # the measured pass
            engine.generate(batch, config)
""")


def study(model: Path, points: int, n: int, tokens: int, first_dim: str = "") -> str:
    seeds = ", ".join(str(s) for s in range(points))
    return (
        f"model: {model}\ndevice: cpu\nn: {n}\nmax_output_tokens: {tokens}\n"
        "pytorch: {batch_size: 8}\nwarmup: {n_warmup: 1}\nwindow: {min_duration_s: 0}\n"
        f"validity: {{min_window_s: 0}}\nsweep:\n{first_dim or '  precision: [fp32]'}\n"
        f"  random_seed: [{seeds}]\n"
    )


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        cmd, cwd=cwd, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}
    )
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
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        model = build_tiny_model("llama", tmp / "model")
        overhead: dict[int, float] = {}
        for points in (args.points, 2 * args.points):
            (tmp / "study_overhead.yaml").write_text(study(model, points, args.n, args.tokens))
            pytest_cmd = [
                sys.executable,
                "-m",
                "pytest",
                "study_overhead.yaml",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--llem-results={tmp / 'out'}",
                "--llem-energy=null",
            ]
            bare_cmd = [
                sys.executable,
                "-c",
                BARE,
                str(model),
                str(points),
                str(args.n),
                str(args.tokens),
            ]
            bare, plugin = [], []
            for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits both
                bare.append(timed(bare_cmd, tmp))
                plugin.append(timed(pytest_cmd, tmp))
            b, p = min(bare), min(plugin)
            overhead[points] = p - b
            print(
                f"{points} points, n={args.n}, {args.tokens} output tokens, best of {args.repeats} fresh processes"
            )
            print(
                f"  bare engine loop: {b:6.2f} s   (all runs: {', '.join(f'{x:.2f}' for x in bare)})"
            )
            print(
                f"  through pytest:   {p:6.2f} s   (all runs: {', '.join(f'{x:.2f}' for x in plugin)})"
            )
            print(f"  plugin overhead:  {p - b:+6.2f} s = {(p - b) / b:+.1%}")
        per_item = (overhead[2 * args.points] - overhead[args.points]) / args.points
        constant = overhead[args.points] - args.points * per_item
        print(
            f"per session: {constant:+.2f} s (pytest start-up, plugin import, collection); "
            f"per item: {per_item * 1000:+.0f} ms"
        )
        items, n_loads = loads(tmp / "out" / "report.json")
        print(
            f"model cache: {items} items that differ only in generation settings -> {n_loads} model load(s)"
        )
        (tmp / "study_two.yaml").write_text(
            study(model, 3, 8, 4, "").replace("precision: fp32\n", "")
            + "  precision: [fp32, bf16]\n"
        )
        subprocess.run(
            [
                *pytest_cmd[:3],
                "study_two.yaml",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--llem-results={tmp / 'two'}",
                "--llem-energy=null",
            ],
            cwd=tmp,
            check=True,
            capture_output=True,
        )
        items, n_loads = loads(tmp / "two" / "report.json")
        print(
            f"model cache: {items} items over 2 precisions (sequential order) -> {n_loads} model load(s)"
        )


if __name__ == "__main__":
    main()
