"""A study on a disturbed machine: what the host checks see, quiet and beside busy loops.

Runs a study (default: the embedded CPU study, SmolLM2-135M) in a real pytest session, with
``--burners N`` processes spinning on the CPUs the whole time (0: as quiet as the machine is),
under the chosen ``validity.on_disturbed`` policy, then prints per item its outcome, each
measured window's figures (the other processes' share of the CPUs, this run's cores, idle),
its throughput and flags. Every figure comes from the plugin's report.

Run: python benchmarks/perf/bench_disturbance.py [--burners 2] [--policy warn|retry|fail]
     [--cycles 1] [--backoff 0] [--study PATH]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

STUDY = Path(__file__).resolve().parents[1] / "study_cpu_smollm2.yaml"


def _burn(stop: Any) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def study_copy(source: Path, target: Path, policy: str, backoff: float | None) -> Path:
    """The study with its ``validity`` section set to the policy (other keys kept)."""
    doc = yaml.safe_load(source.read_text(encoding="utf-8"))
    validity = dict(doc.get("validity") or {})
    validity["on_disturbed"] = policy
    if backoff is not None:
        validity["retry_backoff_s"] = backoff
    doc["validity"] = validity
    path = target / source.name
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def run(study: Path, out: Path, cycles: int | None) -> tuple[float, str]:
    """One pytest session; (seconds, its output)."""
    argv = [sys.executable, "-m", "pytest", str(study), f"--llem-results={out}", "-q"]
    argv += ["-p", "no:cacheprovider", "-c", str(study.parent / "pytest.ini")]
    argv += ["--rootdir", str(study.parent)]
    if cycles is not None:
        argv.append(f"--llem-cycles={cycles}")
    (study.parent / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return time.monotonic() - started, done.stdout + done.stderr


def rows(report: dict[str, Any]) -> list[str]:
    """One line per measured window of each item."""
    lines = []
    for item in report["items"]:
        windows = (item.get("environment") or {}).get("windows") or [{}]
        for n, window in enumerate(windows, 1):
            host = window.get("host") or {}
            share = host.get("others_share")
            lines.append(
                f"{item['nodeid'].rsplit('::', 1)[-1]:<22} {item['outcome']:<7} w{n} "
                f"others {_pct(share)} ({host.get('others_cores', 0):.2f} cores) "
                f"own {host.get('own_cores', 0):.2f} idle {_pct(host.get('idle_share'))} "
                f"tok/s {window.get('output_tokens_per_s') or 0:6.1f} "
                f"flags {', '.join(window.get('flags') or []) or '-'}"
            )
        if item["outcome"] == "failed":
            lines.append(f"    {(item.get('message') or '')[:200]}")
    return lines


def _pct(value: float | None) -> str:
    return "  n/a" if value is None else f"{value * 100:4.0f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burners", type=int, default=0)
    parser.add_argument("--policy", choices=["warn", "retry", "fail"], default="warn")
    parser.add_argument("--cycles", type=int, default=None)
    parser.add_argument("--backoff", type=float, default=None)
    parser.add_argument("--study", type=Path, default=STUDY)
    args = parser.parse_args()
    stop = multiprocessing.Event()
    # Daemonic, and SIGTERM unwinds like Ctrl-C: the burners never outlive this script.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    burners = [
        multiprocessing.Process(target=_burn, args=(stop,), daemon=True)
        for _ in range(args.burners)
    ]
    with tempfile.TemporaryDirectory(prefix="llem-disturb-") as tmp:
        study = study_copy(args.study, Path(tmp), args.policy, args.backoff)
        for b in burners:
            b.start()
        try:
            seconds, output = run(study, Path(tmp) / "out", args.cycles)
        finally:
            stop.set()
            for b in burners:
                b.join(timeout=5)
                if b.is_alive():
                    b.terminate()
        report_file = Path(tmp) / "out" / "report.json"
        header = [ln for ln in output.splitlines() if ln.startswith("llem host")]
        print(f"{args.burners} burner(s), on_disturbed: {args.policy}, {seconds:.0f} s")
        print(*header, sep="\n")
        if not report_file.exists():
            print(output)
            return
        print(*rows(json.loads(report_file.read_text())), sep="\n")
        print(output.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
