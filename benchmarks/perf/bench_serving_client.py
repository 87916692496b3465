"""Is the serving load generator a bottleneck? Achieved against target rate and its CPU cost.

Drives the test server (tests/serving/server.py, a subprocess with known delays) at several
Poisson rates and, at rate inf, under several concurrency caps, and prints per setting: the
achieved rate against the target, how late requests left against their schedule (send lag),
the client's CPU milliseconds per request (the whole process, and the event loop's thread
alone) and its share of one core, and the TTFT and TPOT it measured against the server's
known delays. The server shares the machine, so on a small one both compete for the cores.

Run: python benchmarks/perf/bench_serving_client.py [--seconds 4] [--tokens 32]
Target: achieved rate within 5% of the target; client CPU a small share of one core.
"""

from __future__ import annotations

import argparse
import math
import os
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytest_llem.serving import LoadSpec, metrics, run_load

SERVER = Path(__file__).resolve().parents[2] / "tests" / "serving" / "server.py"


def start_server(first_ms: float, itl_ms: float, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The test server and its port (it prints ``PORT <n>`` once it listens)."""
    args = [sys.executable, str(SERVER), "--first-token-ms", str(first_ms), "--itl-ms", str(itl_ms)]
    with log.open("wb") as err:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if selector.select(timeout=0.2):
            line = proc.stdout.readline().decode()
            if line.startswith("PORT "):
                return proc, int(line.split()[1])
            if not line:
                break
    proc.kill()
    raise RuntimeError(f"the test server did not start: {log.read_text()[-2000:]}")


def one(port: int, rate: float, cap: int | None, n: int, tokens: int) -> dict[str, float | None]:
    spec = LoadSpec(
        base_url=f"http://127.0.0.1:{port}/v1", model="test-model",
        prompts=["one two three four five six seven eight"], max_tokens=tokens,
        num_requests=n, rate=rate, concurrency=cap, seed=1, request_timeout_s=60,
    )  # fmt: skip
    run = run_load(spec)
    figures = metrics(run, None)
    figures["chunks"] = float(sum(len(r.chunk_s) for r in run.records))
    return figures


def fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=4.0, help="schedule length per rate")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--first-ms", type=float, default=20.0)
    parser.add_argument("--itl-ms", type=float, default=5.0)
    parser.add_argument("--rates", default="4,16,64")
    parser.add_argument("--caps", default="8,32,128")
    parser.add_argument("--inf-requests", type=int, default=256)
    args = parser.parse_args()
    settings = [
        (float(r), None, max(32, int(float(r) * args.seconds))) for r in args.rates.split(",")
    ]
    settings += [(math.inf, int(c), args.inf_requests) for c in args.caps.split(",")]
    log = Path(tempfile.mkdtemp(prefix="bench-serving-")) / "server.log"
    proc, port = start_server(args.first_ms, args.itl_ms, log)
    print(f"# server: first token {args.first_ms} ms, {args.itl_ms} ms between tokens, "
          f"{args.tokens} tokens; {os.cpu_count()} CPUs; python {sys.version.split()[0]}")  # fmt: skip
    head = ("target", "cap", "n", "achieved", "ach/tgt", "lag p50", "lag p99", "cpu ms/req",
            "loop ms/req", "us/chunk", "cpu %core", "ttft p50", "tpot p50", "errors")  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    try:
        one(port, math.inf, 4, 8, args.tokens)  # warm the server and the imports
        for rate, cap, n in settings:
            f = one(port, rate, cap, n, args.tokens)
            target = f["target_rate"]
            ratio = f["achieved_rate"] / target if target and f["achieved_rate"] else None
            per_chunk = (
                f["client_cpu_ms_per_request"] * n * 1000 / f["chunks"] if f["chunks"] else None
            )  # type: ignore[operator]
            cpu_pct = (f["client_cpu_fraction"] or 0) * 100
            row = (
                "inf" if math.isinf(rate) else f"{rate:g}", str(cap or "-"), str(n),
                fmt(f["achieved_rate"]), fmt(ratio, ".3f"), fmt(f["send_lag_ms_p50"], ".2f"),
                fmt(f["send_lag_ms_p99"], ".2f"), fmt(f["client_cpu_ms_per_request"], ".2f"),
                fmt(f["client_loop_cpu_ms_per_request"], ".2f"), fmt(per_chunk, ".0f"),
                fmt(cpu_pct), fmt(f["ttft_ms_p50"]), fmt(f["tpot_ms_p50"], ".2f"),
                fmt(f["errored_requests"], ".0f"),
            )  # fmt: skip
            print("| " + " | ".join(row) + " |", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
