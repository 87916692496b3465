"""The gate as a statistical instrument: detection and false-alarm rates by simulation.

Each trial draws per-cycle energy-per-token values with realistic run-to-run noise (normal,
1% CV by default) for a baseline and for the current run, with either a true 3% regression
or none, and asks the real gate (pytest_llem.gate.verdict.evaluate) for its verdict.

Run: python benchmarks/perf/bench_gate_power.py [--trials 2000] [--cv 0.01] [--limit 2]
"""

from __future__ import annotations

import argparse
import random

from pytest_llem.gate.thresholds import parse_fail_on
from pytest_llem.gate.verdict import evaluate
from pytest_llem.study.spec import SignificanceConfig

METRIC = "energy_per_output_token_j"


def rate(
    cycles: int,
    shift: float,
    sig: SignificanceConfig | None,
    limit: str,
    cv: float,
    trials: int,
    rng: random.Random,
) -> float:
    """Share of trials in which the gate fails the item."""
    limits = parse_fail_on(f"{METRIC}>{limit}%")
    # min_cycles above the sample size turns significance off: the threshold alone decides.
    config = sig or SignificanceConfig(min_cycles=cycles + 1)
    fails = 0
    for _ in range(trials):
        base = [rng.gauss(1.0, cv) for _ in range(cycles)]
        cur = [rng.gauss(1.0 + shift, cv * (1.0 + shift)) for _ in range(cycles)]
        verdict = evaluate(limits, {METRIC: cur[-1]}, {METRIC: cur}, {METRIC: base}, True, config)
        fails += verdict.status == "fail"
    return fails / trials


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument(
        "--cv", type=float, default=0.01, help="run-to-run noise (coefficient of variation)"
    )
    parser.add_argument("--limit", default="2", help="relative limit in percent")
    parser.add_argument("--regression", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(
        f"noise CV {args.cv:.1%}, true regression {args.regression:.0%}, limit {args.limit}%, "
        f"{args.trials} trials per cell, alpha 0.05"
    )
    print(f"{'cycles':>6}  {'decision':<22}  {'detects 3%':>10}  {'false alarms':>12}")
    for cycles in (3, 5, 10):
        for name, sig in (
            ("threshold only", None),
            ("welch, alpha 0.05", SignificanceConfig(test="welch", alpha=0.05, min_cycles=3)),
            (
                "mannwhitney, a 0.05",
                SignificanceConfig(test="mannwhitney", alpha=0.05, min_cycles=3),
            ),
        ):
            detect = rate(cycles, args.regression, sig, args.limit, args.cv, args.trials, rng)
            alarm = rate(cycles, 0.0, sig, args.limit, args.cv, args.trials, rng)
            print(f"{cycles:>6}  {name:<22}  {detect:>10.1%}  {alarm:>12.1%}")


if __name__ == "__main__":
    main()
