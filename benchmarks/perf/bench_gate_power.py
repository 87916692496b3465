"""The gate as a statistical instrument: how often it passes, fails or cannot decide.

Each trial draws per-cycle energy-per-token values (normal, with the given run-to-run noise as
a coefficient of variation) for a baseline and for the current run, with a true regression of
0%, 3%, 10% or 50%, and asks the real gate (pytest_llem.gate.verdict.evaluate, a 5% relative
limit, Welch, alpha 0.05) for its verdict: pass, fail or inconclusive. The previous
two-verdict gate (Welch against "no change" plus the threshold, where "not significant"
meant pass) is replayed on the same draws for comparison.

The whole-study table asks what a user meets: a study of many unchanged configs x 2 gated
metrics fails when any item does not pass (fail, or inconclusive under the default
``--llem-inconclusive fail``). It is measured with the family-wise correction the gate applies
(Bonferroni over the study's beyond-the-limit tests) and without it.

The drift table compares the stored-baseline gate with the same-session paired gate (A/B)
when the machine drifts: a linear trend, a step (a tenant arrives) or a random walk, each
sized against the noise, plus an offset between the day the baseline was saved and today.
The paired arms run back to back (AB, BA, ...) inside one session and share the drift; the
stored baseline shares nothing with today.

Run: python benchmarks/perf/bench_gate_power.py [--trials 2000] [--limit 5] [--seed 1]
     [--studies 400] [--drift-trials 500] [--only study|cells|drift]
"""

from __future__ import annotations

import argparse
import random
from collections import Counter

from pytest_llem.gate.thresholds import parse_fail_on
from pytest_llem.gate.verdict import evaluate
from pytest_llem.stats.descriptive import mean
from pytest_llem.stats.significance import welch_greater
from pytest_llem.study.sections import SignificanceConfig

METRIC = "energy_per_output_token_j"
NOISE = (0.01, 0.05, 0.20)
CYCLES = (3, 5, 10)
SHIFTS = (0.0, 0.03, 0.10, 0.50)


def old_gate_passes(cur: list[float], base: list[float], limit: float, alpha: float) -> bool:
    """The gate before issue 15: fail only when beyond the limit and significant vs 0."""
    regressed = (mean(cur) - mean(base)) / mean(base) > limit
    return not (regressed and welch_greater(cur, base) < alpha)


def cell(
    cycles: int, shift: float, cv: float, limit: float, trials: int, rng: random.Random
) -> tuple[Counter[str], float]:
    """Verdict shares of the gate, and the share the old gate passed, for one setting."""
    sig = SignificanceConfig(test="welch", alpha=0.05, min_cycles=3)
    limits = parse_fail_on(f"{METRIC}>{limit * 100:g}%")
    verdicts: Counter[str] = Counter()
    old_passes = 0
    for _ in range(trials):
        base = [rng.gauss(1.0, cv) for _ in range(cycles)]
        cur = [rng.gauss(1.0 + shift, cv * (1.0 + shift)) for _ in range(cycles)]
        verdict = evaluate(limits, {METRIC: cur[-1]}, {METRIC: cur}, {METRIC: base}, True, sig)
        verdicts[verdict.status] += 1
        old_passes += old_gate_passes(cur, base, limit, sig.alpha)
    return verdicts, old_passes / trials


STUDY_METRICS = ("energy_per_output_token_j", "output_tokens_per_s")


def study_fails(
    configs: int,
    cycles: int,
    cv: float,
    limit: float,
    correction: str,
    rng: random.Random,
) -> tuple[bool, bool]:
    """One unchanged study: (some item did not pass, some item failed outright)."""
    sig = SignificanceConfig(test="welch", alpha=0.05, min_cycles=3, correction=correction)
    limits = parse_fail_on(",".join(f"{m}>{limit * 100:g}%" for m in STUDY_METRICS))
    tests = configs * len(STUDY_METRICS)
    not_pass = failed = False
    for _ in range(configs):
        base = {m: [rng.gauss(1.0, cv) for _ in range(cycles)] for m in STUDY_METRICS}
        cur = {m: [rng.gauss(1.0, cv) for _ in range(cycles)] for m in STUDY_METRICS}
        last = {m: v[-1] for m, v in cur.items()}
        verdict = evaluate(limits, last, cur, base, True, sig, tests=tests)
        not_pass = not_pass or verdict.status != "pass"
        failed = failed or verdict.status == "fail"
    return not_pass, failed


def study_table(studies: int, limit: float, rng: random.Random) -> None:
    """Whole-study false-fail rates of unchanged work, as a user meets them."""
    print(
        f"\nwhole study, unchanged work, {studies} studies per row, limit {limit * 100:g}% on "
        f"{' and '.join(STUDY_METRICS)}: % of studies that fail (any item fail or "
        "inconclusive) / % with an outright fail"
    )
    print("| configs x metrics | noise CV | cycles | Bonferroni (default) | no correction |")
    print("|---|---:|---:|---|---|")
    for configs, cv, cycles in ((20, 0.01, 5), (20, 0.01, 3), (20, 0.02, 5), (5, 0.01, 5)):
        cells = []
        for correction in ("bonferroni", "none"):
            runs = [
                study_fails(configs, cycles, cv, limit, correction, rng) for _ in range(studies)
            ]
            not_pass = 100.0 * sum(r[0] for r in runs) / studies
            failed = 100.0 * sum(r[1] for r in runs) / studies
            cells.append(f"{not_pass:.1f} / {failed:.1f}")
        print(f"| {configs} x 2 | {cv:.0%} | {cycles} | {cells[0]} | {cells[1]} |", flush=True)


DRIFTS = ("trend", "step", "walk")


def drift_path(kind: str, slots: int, cv: float, rng: random.Random) -> list[float]:
    """Multiplicative drift over ``slots`` time slots, sized against the noise ``cv``: a trend
    or a step of 4 noise widths over the run, or a random walk of one noise width per slot."""
    if kind == "trend":
        return [1.0 + 4 * cv * t / max(1, slots - 1) for t in range(slots)]
    if kind == "step":
        at = rng.randrange(1, slots)
        return [1.0 if t < at else 1.0 + 4 * cv for t in range(slots)]
    level, out = 1.0, []
    for _ in range(slots):
        out.append(level)
        level *= 1.0 + rng.gauss(0.0, cv)
    return out


def drift_cell(
    kind: str, cycles: int, shift: float, cv: float, limit: float, trials: int, rng: random.Random
) -> tuple[Counter[str], Counter[str]]:
    """Verdicts of the stored-baseline gate and of the paired gate on drifting draws."""
    from pytest_llem.gate.paired import paired_comparison

    sig = SignificanceConfig(test="welch", alpha=0.05, min_cycles=3)
    limits = parse_fail_on(f"{METRIC}>{limit * 100:g}%")
    stored: Counter[str] = Counter()
    paired: Counter[str] = Counter()
    for _ in range(trials):
        # Stored baseline: saved in another session (its own drift, and a day-to-day offset
        # of two noise widths), compared with today's run.
        day = 1.0 + rng.gauss(0.0, 2 * cv)
        then = drift_path(kind, cycles, cv, rng)
        now = drift_path(kind, cycles, cv, rng)
        base = [then[i] * rng.gauss(1.0, cv) for i in range(cycles)]
        cur = [day * (1.0 + shift) * now[i] * rng.gauss(1.0, cv) for i in range(cycles)]
        verdict = evaluate(limits, {METRIC: cur[-1]}, {METRIC: cur}, {METRIC: base}, True, sig)
        stored[verdict.status] += 1
        # Paired: one session, two slots per cycle, the arms alternating AB, BA, ...
        path = drift_path(kind, 2 * cycles, cv, rng)
        ref, cand = [], []
        for i in range(cycles):
            r_slot, c_slot = (2 * i, 2 * i + 1) if i % 2 == 0 else (2 * i + 1, 2 * i)
            ref.append(path[r_slot] * rng.gauss(1.0, cv))
            cand.append((1.0 + shift) * path[c_slot] * rng.gauss(1.0, cv))
        comp = paired_comparison(limits[0], ref, cand, True, sig, {})
        paired[comp.status] += 1
    return stored, paired


def drift_table(trials: int, limit: float, rng: random.Random, cv: float = 0.02) -> None:
    """Stored baseline vs paired A/B under drift: pass / fail / inconclusive %."""
    print(
        f"\ndrift: noise CV {cv:.0%}, limit {limit * 100:g}% on {METRIC}, {trials} trials per "
        "cell; each cell stored-baseline gate | paired gate, as pass / fail / inconclusive %"
    )
    changes = (0.0, 0.03, 0.10)
    print("| drift | cycles | " + " | ".join(f"true {c:.0%}" for c in changes) + " |")
    print("|---|---:|" + "---|" * len(changes))
    for kind in DRIFTS:
        for cycles in CYCLES:
            cells = []
            for shift in changes:
                stored, paired = drift_cell(kind, cycles, shift, cv, limit, trials, rng)

                def share(counts: Counter[str]) -> str:
                    return " / ".join(
                        f"{100.0 * counts.get(k, 0) / trials:.0f}"
                        for k in ("pass", "fail", "inconclusive")
                    )

                cells.append(f"{share(stored)} \\| {share(paired)}")
            print(f"| {kind} | {cycles} | " + " | ".join(cells) + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--limit", type=float, default=5.0, help="relative limit in percent")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--studies", type=int, default=400)
    parser.add_argument("--drift-trials", type=int, default=500)
    parser.add_argument("--only", choices=("study", "cells", "drift"), default=None)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    limit = args.limit / 100.0
    if args.only in (None, "drift"):
        drift_table(args.drift_trials, limit, rng)
    if args.only in (None, "study"):
        study_table(args.studies, limit, rng)
    if args.only in ("study", "drift"):
        return
    print(
        f"limit {args.limit:g}% worse, welch alpha 0.05, {args.trials} trials per cell; "
        "cells: pass / fail / inconclusive % (old gate: pass %)"
    )
    heads = " | ".join(f"true {s:.0%}" for s in SHIFTS)
    print(f"| noise CV | cycles | {heads} |")
    print("|---:|---:|" + "---|" * len(SHIFTS))
    for cv in NOISE:
        for cycles in CYCLES:
            cells = []
            for shift in SHIFTS:
                verdicts, old = cell(cycles, shift, cv, limit, args.trials, rng)
                share = {k: 100.0 * v / args.trials for k, v in verdicts.items()}
                cells.append(
                    f"{share.get('pass', 0):.1f} / {share.get('fail', 0):.1f} / "
                    f"{share.get('inconclusive', 0):.1f} ({100 * old:.1f})"
                )
            print(f"| {cv:.0%} | {cycles} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
