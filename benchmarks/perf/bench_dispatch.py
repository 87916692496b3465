"""Container dispatch: seconds per item for the ephemeral and persistent strategies.

Runs the same small study (a tiny offline model on CPU) through both docker runners on the
local Docker-compatible API (podman in CI: `bash images/test/podman-service.sh`), and prints
per-item wall seconds, the in-container measured part, and the dispatch overhead (the rest).

Run: DOCKER_HOST=unix:///run/podman/podman.sock python benchmarks/perf/bench_dispatch.py [--items 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pytest_llem.runners.base import RunSpec
from pytest_llem.runners.docker.ephemeral import EphemeralRunner
from pytest_llem.runners.docker.options import DockerOptions
from pytest_llem.runners.docker.persistent import PersistentRunner
from pytest_llem.study.model import ExperimentConfig
from pytest_llem.testing import build_tiny_model

PROJECT = Path(__file__).resolve().parents[2]


def mounts() -> tuple[str, ...]:
    paths = {"/usr", "/lib", "/lib64", "/bin", sys.prefix, sys.base_prefix, str(PROJECT)}
    paths |= {str(Path(p).resolve()) for p in paths}
    return tuple(sorted(p for p in paths if Path(p).exists()))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--image", default="localhost/llem-test:latest")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_model("gpt2", Path(tmp) / "model")
        opts = DockerOptions(python=sys.executable, volumes=mounts(), hf_cache=None)
        config = ExperimentConfig(
            model=str(model),
            device="cpu",
            precision="fp32",
            n=4,
            max_output_tokens=4,
            warmup={"n_warmup": 1},
            window={"min_duration_s": 0},
            baseline={"enabled": False},
        )
        rows = []
        for name, runner in (
            ("ephemeral", EphemeralRunner(args.image, "cli", opts)),
            (
                "persistent",
                PersistentRunner(args.image, "cli", opts, Path(tempfile.mkdtemp(dir=tmp))),
            ),
        ):
            walls, inside = [], []
            for i in range(args.items):
                spec = RunSpec(
                    nodeid=f"bench::{i}",
                    point_id=f"p{i}",
                    config_hash=f"{i:016x}",
                    config=config,
                    base_dir=tmp,
                )
                start = time.perf_counter()
                m = runner.run(spec, lambda phase, detail: None)
                walls.append(time.perf_counter() - start)
                inside.append((m.model_load_s or 0.0) + m.metrics.duration_s)
            runner.close()
            rows.append((name, walls, inside))
        print(f"{args.items} items per strategy, image {args.image}")
        print(
            f"{'strategy':<11} {'first item s':>12} {'mean item s':>12} "
            f"{'model+window s':>15} {'dispatch s/item':>16}"
        )
        for name, walls, inside in rows:
            steady = walls[1:] or walls  # the first persistent item also starts the container
            overhead = statistics.mean(
                w - m for w, m in zip(walls[1:] or walls, inside[1:] or inside, strict=True)
            )
            print(
                f"{name:<11} {walls[0]:>12.2f} {statistics.mean(steady):>12.2f} "
                f"{statistics.mean(inside):>15.2f} {overhead:>16.2f}"
            )
        eph, per = (statistics.mean(r[1][1:] or r[1]) for r in rows)
        print(
            f"persistent saves {eph - per:.2f} s per item "
            f"({(eph - per) / eph:.0%} of an ephemeral item)"
        )


if __name__ == "__main__":
    main()
