"""Merge shard reports into one report and re-apply the gate across all cycles.

``python -m pytest_llem merge shard-*/report.json -o report.json [--compare NAME]
[--fail-on LIMITS] [--save-baseline NAME]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pytest_llem.errors import LlemError
from pytest_llem.gate import baseline_file, stability
from pytest_llem.gate.apply import Gate, stability_rules
from pytest_llem.gate.completeness import CycleRecord, describe, missing_from_records
from pytest_llem.gate.thresholds import LimitSyntaxError, parse_fail_on
from pytest_llem.gate.verdict import table
from pytest_llem.report import document, terminal
from pytest_llem.results.records import ExperimentResult, write_json_atomic
from pytest_llem.study.quality import QualityConfig
from pytest_llem.study.sections import GateConfig, percent


class MergeError(LlemError):
    """Shard reports that cannot be merged; names the file."""


def read_report(path: Path) -> dict[str, Any]:
    """Load one shard report (a pytest-llem JSON report)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MergeError(
            f"cannot read report {path}: {exc}", "pass JSON reports written by --llem-json"
        ) from None
    if not isinstance(data, dict) or data.get("report_version") != document.REPORT_VERSION:
        raise MergeError(
            f"{path} is not a pytest-llem report (report_version {document.REPORT_VERSION})",
            "pass JSON reports written by --llem-json",
        )
    return data


def merge_items(reports: Sequence[tuple[Path, dict[str, Any]]]) -> list[ExperimentResult]:
    """All items, each exactly once."""
    seen: dict[str, Path] = {}
    items: list[ExperimentResult] = []
    for path, data in reports:
        for raw in data.get("items", []):
            try:
                item = ExperimentResult.model_validate(raw)
            except ValidationError as exc:
                raise MergeError(
                    f"{path}: malformed item: {exc.errors()[0]['msg']}", "regenerate the shard"
                ) from None
            if item.nodeid in seen:
                raise MergeError(
                    f"{item.nodeid} is in both {seen[item.nodeid]} and {path}",
                    "merge reports of disjoint shards of one run",
                )
            seen[item.nodeid] = path
            items.append(item)
    return items


def regate(
    items: list[ExperimentResult], gates: dict[str, dict[str, Any]], gate: Gate
) -> tuple[int, list[str]]:
    """Re-evaluate every config over all its cycles; return the number of gate failures and
    the configs that are missing cycles (those are inconclusive, never decided on part of
    their cycles: a shard that failed or was cut short must not let a regression pass)."""
    failures = 0
    incomplete: list[str] = []
    groups: dict[tuple[str, str], list[ExperimentResult]] = {}
    for item in items:
        groups.setdefault((item.study_hash, item.config_hash), []).append(item)
    per_study: dict[str, int] = {}
    for study_hash, _ in groups:
        per_study[study_hash] = per_study.get(study_hash, 0) + 1
    for (study_hash, config_hash), group in groups.items():
        group.sort(key=lambda r: r.cycle)
        n_cycles = max((r.n_cycles or 0 for r in group), default=0) or group[-1].cycle
        records = [CycleRecord(r.cycle, r.outcome, r.metrics is not None, r.message) for r in group]
        missing = missing_from_records(n_cycles, records)
        measured = [r for r in group if r.metrics is not None]
        if missing and measured:
            incomplete.append(f"{group[0].point_id} [{config_hash}]: {describe(missing)}")
        study_gate = GateConfig.model_validate(gates.get(study_hash) or {})
        guard = group[0].config.get("quality")  # the quality: limits, on each item's answers
        checks = QualityConfig.model_validate(guard) if guard else None
        for index, item in enumerate(measured):
            assert item.metrics is not None
            verdict, stats = gate.judge(
                study_gate,
                config_hash,
                item.hardware or "unknown",
                item.metrics.model_dump(),
                final=index == len(measured) - 1,
                missing=missing,
                study_hash=study_hash,
                point_id=item.point_id,
                configs=per_study[study_hash],
                study_name=item.study,
                quality=item.quality,
                checks=checks,
            )
            item.gate = verdict.model_dump(mode="json") if verdict is not None else None
            item.cycle_stats = stats or item.cycle_stats
            if verdict is not None and verdict.failed:
                failures += 1
                item.outcome = "failed"
                item.message = table(verdict)
    return failures, incomplete


DESCRIPTION = """\
Merge the JSON reports of the shards of one run (--llem-shard K/N) into one
report, and re-apply the gate to every config over all its cycles, as a single
run would. A config missing cycles (a shard failed or was cut short) is named
as incomplete and never decided on part of its cycles.

Exit status: 0 when no item failed; 1 when an item failed or errored (the gate
included); 2 when a report, the limits or the baseline cannot be read, or
--save-baseline refuses an unstable config.

example:
  python -m pytest_llem merge shard-*/report.json -o report.json \\
      --compare main --fail-on 'energy_per_output_token_j>5%'
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``merge`` on ``parser``."""
    parser.add_argument(
        "reports",
        nargs="+",
        type=Path,
        metavar="REPORT",
        help="shard JSON reports written by --llem-json (by default <results>/report.json), "
        "one per shard",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="OUT",
        help="path of the merged JSON report (required; written even when items fail)",
    )
    parser.add_argument(
        "--compare",
        metavar="NAME",
        help="baseline NAME (in --baseline-dir) or path to a baseline file to re-apply the "
        "gate against, as --llem-compare; without it only absolute limits are checked",
    )
    parser.add_argument(
        "--baseline-dir",
        type=Path,
        default=Path(".llem/baselines"),
        metavar="DIR",
        help="directory of named baselines, for --compare and --save-baseline "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--fail-on",
        default="",
        metavar="LIMITS",
        help="gate limits, as --llem-fail-on, e.g. "
        "'energy_per_output_token_j>5%%,latency_p99_s<2.0' (N%% = relative regression vs "
        "the baseline; <V a ceiling; >V a floor); they win over each study's gate limits",
    )
    parser.add_argument(
        "--require-energy",
        action="store_true",
        help="fail items that measured no energy, and gated energy metrics that could not be "
        "compared (as --llem-require-energy)",
    )
    parser.add_argument(
        "--require-baseline",
        action="store_true",
        help="fail items that have no baseline entry to compare with (as --llem-require-baseline)",
    )
    parser.add_argument(
        "--inconclusive",
        choices=("fail", "warn"),
        default="fail",
        help="what a relative limit the data cannot decide (beyond it but not significant, "
        "or too few cycles) does to the item, as --llem-inconclusive (default: %(default)s)",
    )
    parser.add_argument(
        "--save-baseline",
        metavar="NAME",
        help="store the merged results as baseline NAME in --baseline-dir; refused when a "
        "config's cycles vary beyond --max-cv",
    )
    parser.add_argument(
        "--save-baseline-force",
        action="store_true",
        help="save the baseline even when some configs' cycles vary beyond --max-cv",
    )
    parser.add_argument(
        "--max-cv",
        type=percent,
        default=None,
        metavar="PERCENT",
        help="cycle-to-cycle CV above which a config is unstable, e.g. 5%% (as ini llem_max_cv; "
        "default: the study's gate.max_cv, else 5%%)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pytest_llem merge`` on its own (``run`` does the work)."""
    parser = argparse.ArgumentParser(
        prog="python -m pytest_llem merge",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def _load(
    args: argparse.Namespace,
) -> tuple[list[tuple[Path, dict[str, Any]]], list[ExperimentResult], dict[str, Any], Gate]:
    """The reports, their items, each study's gate section, and the gate to re-apply.

    Raises:
        LlemError: a report or the baseline cannot be read.
        LimitSyntaxError: ``--fail-on`` does not parse.
    """
    reports = [(p, read_report(p)) for p in args.reports]
    items = merge_items(reports)
    gates = {s["study_hash"]: s.get("gate") or {} for _, d in reports for s in d.get("study", [])}
    loaded = (
        baseline_file.load(baseline_file.resolve(args.compare, args.baseline_dir))
        if args.compare
        else None
    )
    gate = Gate(
        cli=parse_fail_on(args.fail_on),
        baseline=loaded,
        require_energy=args.require_energy,
        require_baseline=args.require_baseline,
        inconclusive=args.inconclusive,
        max_cv=args.max_cv,
    )
    return reports, items, gates, gate


def run(args: argparse.Namespace) -> int:
    """Merge, re-gate, write the report (and the baseline); 0, 1 (an item failed) or 2."""
    try:
        reports, items, gates, gate = _load(args)
    except (LlemError, LimitSyntaxError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    failures, incomplete = regate(items, gates, gate)
    sessions = [d["session"] for _, d in reports]
    session = {
        "id": "merged-" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ"),
        "started_at": min(s.get("started_at") or "" for s in sessions),
        "finished_at": max(s.get("finished_at") or "" for s in sessions),
        "status": "complete"
        if all(s.get("status") == "complete" for s in sessions)
        else "interrupted",
        "merged_from": [str(p) for p, _ in reports],
        "shards": [s.get("shard") for s in sessions],
        "baseline": args.compare,
    }
    write_json_atomic(args.output, document.build(items, session, gates))
    if args.save_baseline:
        saved = _save_baseline(args, items, gates, gate)
        if saved != 0:
            return saved
    for line in terminal.summary_lines(items):
        print(line)
    for line in incomplete:
        print(f"incomplete (not decided on all its cycles): {line}")
    failed = sum(1 for i in items if i.outcome in ("failed", "error"))
    print(
        f"merged {len(items)} items from {len(reports)} reports into {args.output}: "
        f"{failed} failed ({failures} by the gate)"
    )
    return 1 if failed else 0


def _save_baseline(
    args: argparse.Namespace,
    items: list[ExperimentResult],
    gates: dict[str, Any],
    gate: Gate,
) -> int:
    """Store the merged baseline unless a config is unstable (and not forced): 0 or 2."""
    name = args.save_baseline
    built = baseline_file.build(name, items)
    refused = stability.refusals(built.entries, stability_rules(gate, items, gates))
    if refused and not args.save_baseline_force:
        print(f"error: {stability.refusal_note(name, refused, '--save-baseline-force')}")
        return 2
    target = baseline_file.resolve(name, args.baseline_dir)
    try:
        baseline_file.save(target, built)
    except LlemError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"baseline {name!r} saved: {target}")
    for line in refused:
        print(f"  saved although unstable: {line}")
    return 0
