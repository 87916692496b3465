"""Collection benchmark: time (and peak memory) to expand and collect 1k, 10k and 100k points.

Run: python benchmarks/perf/bench_collection.py [--sizes 1000 10000 100000] [--pytest]
Target: 10k points expanded and collected in under 2 s.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from pytest_llem import study
from pytest_llem.engines.builtin import BUILTIN


def study_text(points: int) -> str:
    # Three dimensions whose product is `points` (seeds x n x max_output_tokens).
    a = 10
    b = 10 if points >= 100 else 1
    c = math.ceil(points / (a * b))
    return (
        "name: bench\nmodel: m\ndevice: cpu\n"
        "sweep:\n"
        f"  random_seed: {list(range(a))}\n"
        f"  n: {list(range(1, b + 1))}\n"
        f"  max_output_tokens: {list(range(1, c + 1))}\n"
    )


def expand(path: Path, points: int) -> tuple[float, float, int]:
    """Seconds to load + order the plan (untraced), then peak MB in a second, traced run."""
    start = time.perf_counter()
    n_items = len(study.load(path, BUILTIN, max_points=points).items())
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    study.load(path, BUILTIN, max_points=points).items()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak / 1e6, n_items


def pytest_collect(path: Path, points: int) -> float:
    code = (
        "import sys, time, pytest\n"
        "t = time.perf_counter()\n"
        "rc = pytest.main(['--collect-only', '-qq', '-p', 'no:cacheprovider',"
        f" '--llem-max-items', '{points}', {str(path)!r}])\n"
        "print('ELAPSED', time.perf_counter() - t)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=path.parent
    )
    line = next(x for x in out.stdout.splitlines() if x.startswith("ELAPSED"))
    return float(line.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument(
        "--pytest", action="store_true", help="also time a full pytest --collect-only"
    )
    args = parser.parse_args()
    print(f"{'points':>8}  {'expand s':>9}  {'peak MB':>8}  {'items':>7}  {'pytest collect s':>16}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            path = Path(tmp) / f"study_{size}.yaml"
            path.write_text(study_text(size))
            elapsed, peak, n_items = expand(path, size)
            collect = f"{pytest_collect(path, size):.2f}" if args.pytest else "-"
            print(f"{size:>8}  {elapsed:>9.3f}  {peak:>8.1f}  {n_items:>7}  {collect:>16}")


if __name__ == "__main__":
    main()
