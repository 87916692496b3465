"""GitHub Actions: a markdown job summary and ``::error``/``::warning`` annotations."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_llem.gate.quality_figures import QUALITY_METRICS
from pytest_llem.gate.settle import Unsettled
from pytest_llem.gate.verdict import Comparison, inconclusive_line
from pytest_llem.results.records import ExperimentResult


def _escape(text: str) -> str:
    # Workflow-command data must not contain raw newlines or percent signs.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def quality_figure(comp: Mapping[str, Any]) -> str:
    """A quality comparison's figure: ``12/16 agree``, ``0.500x``."""
    agreement = comp.get("agreement")
    if agreement:
        return f"{agreement['exact'] + agreement['close']}/{agreement['prompts']} agree"
    ratio = comp.get("ratio")
    return f"{ratio:.3f}x" if ratio is not None else str(comp.get("status"))


def quality_cell(result: ExperimentResult) -> str:
    """The item's answers in brief: ``8.0 tok/req, ppl 301.1, 4/4 agree`` ('-' without)."""
    record = result.quality
    if record is None:
        return "-"
    parts = [f"{record.output_tokens_per_request:.1f} tok/req"]
    if record.perplexity is not None:
        parts.append(f"ppl {record.perplexity:.4g}")
    for comp in (result.gate or {}).get("comparisons", []):
        if comp.get("metric") == "token_agreement" and comp.get("agreement"):
            parts.append(quality_figure(comp))
    return ", ".join(parts)


def pair_quality_cell(comparisons: Sequence[Mapping[str, Any]]) -> str:
    """An A/B pair's quality verdicts in brief: ``output_length fail 0.500x, ...``."""
    parts = [
        f"{c['metric']} {c['status']} {quality_figure(c)}".rstrip()
        for c in comparisons
        if c.get("metric") in QUALITY_METRICS and c.get("status") in ("pass", "fail")
    ]
    parts += [
        f"{c['metric']} {c['status']}"
        for c in comparisons
        if c.get("metric") in QUALITY_METRICS and c.get("status") not in ("pass", "fail")
    ]
    return ", ".join(parts) or "-"


def gate_cell(result: ExperimentResult) -> str:
    """Gate status and the worst relative delta, e.g. ``fail (output_tokens_per_s +8.1%)``;
    a quality limit that decided it comes first: ``fail (token_agreement 3/8 agree)``."""
    gate = result.gate
    if not gate:
        return "-"
    deltas = [c for c in gate.get("comparisons", []) if c.get("delta_pct") is not None]
    # An A/B arm shows its pair's verdict, named as the pair's, with the ratio it judged.
    pair = "pair " if any(c.get("kind") == "paired" for c in gate.get("comparisons", [])) else ""
    answers = [
        c
        for c in gate.get("comparisons", [])
        if c.get("metric") in QUALITY_METRICS and c.get("status") == gate.get("status")
    ]
    if answers and gate.get("status") in ("fail", "inconclusive"):
        return f"{pair}{gate['status']} ({answers[0]['metric']} {quality_figure(answers[0])})"
    if not deltas:
        return pair + str(gate["status"])
    failing = [c for c in deltas if c.get("status") == "fail"]
    unsure = [c for c in deltas if c.get("status") == "inconclusive"]
    worst = (failing or unsure or sorted(deltas, key=lambda c: -abs(c["delta_pct"])))[0]
    if worst.get("kind") == "paired" and worst.get("ratio") is not None:
        return f"{pair}{gate['status']} ({worst['metric']} ratio {worst['ratio']:.3f})"
    return f"{pair}{gate['status']} ({worst['metric']} {worst['delta_pct']:+.1f}%)"


def gate_rank(result: ExperimentResult) -> int:
    """Sort key: regressions first, then inconclusive verdicts, then the rest."""
    status = (result.gate or {}).get("status")
    return 0 if status == "fail" else 1 if status == "inconclusive" else 2


def _inconclusive(r: ExperimentResult, where: str) -> str:
    """``::warning`` (``::error`` when it failed the item) for an undecided relative limit."""
    gate = r.gate or {}
    level = "error" if gate.get("inconclusive", "fail") == "fail" else "warning"
    lines = [
        Comparison.model_validate(c)
        for c in gate.get("comparisons", [])
        if c.get("status") == "inconclusive"
    ]
    detail = "; ".join(inconclusive_line(c) for c in lines)
    return f"::{level} {where},title=llem inconclusive {r.point_id}::{_escape(detail)}"


def summary_markdown(
    results: Sequence[ExperimentResult], plots: Sequence[Path] = (), notes: Sequence[str] = ()
) -> str:
    """One markdown table per study, regressions first; then what the gate could not judge."""
    lines: list[str] = ["## pytest-llem results", ""]
    studies: dict[str, list[ExperimentResult]] = {}
    for result in results:
        studies.setdefault(f"{result.study} [{result.study_hash}]", []).append(result)
    for title, items in studies.items():
        answers = any(r.quality is not None for r in items)
        lines += [
            f"### Study {title}",
            "",
            "| item | outcome | gate | out tok/s | J/token | "
            + ("quality | " if answers else "")
            + "energy source |",
            "|---|---|---|---|---|---|" + ("---|" if answers else ""),
        ]
        for r in sorted(items, key=gate_rank):
            m = r.metrics
            source = (r.energy.source or f"none: {r.energy.reason}") if r.energy else "n/a"
            lines.append(
                f"| {r.nodeid.rsplit('::', 1)[-1]} | {r.outcome} | {gate_cell(r)} | "
                f"{_fmt(m.output_tokens_per_s if m else None, '.1f')} | "
                f"{_fmt(m.energy_per_output_token_j if m else None, '.4g')} | "
                + (f"{quality_cell(r)} | " if answers else "")
                + f"{source} |"
            )
        lines.append("")
    if notes:
        lines += ["### Not decided or not compared", "", *(f"- {n}" for n in notes), ""]
    for plot in plots:
        lines.append(f"![{plot.stem}]({plot})")
    return "\n".join(lines) + "\n"


def _where(study_file: str | None, line: int | None, rootdir: Path) -> str:
    file = study_file or ""
    with contextlib.suppress(ValueError):  # outside the repository: keep it absolute
        file = str(Path(file).resolve().relative_to(rootdir.resolve()))
    return f"file={file},line={line or 1}"


def unsettled_commands(entries: Sequence[Unsettled], rootdir: Path) -> list[str]:
    """``::error`` for each config the gate could not decide on all its cycles."""
    return [
        f"::error {_where(u.study_file, u.line, rootdir)},title=llem inconclusive "
        f"{u.point_id}::{_escape(u.message())}"
        for u in entries
    ]


def workflow_commands(results: Sequence[ExperimentResult], rootdir: Path) -> list[str]:
    """``::error`` at the study line of each regressed point, ``::warning`` for validity and
    for inconclusive gate verdicts (``::error`` when ``--llem-inconclusive fail`` failed it)."""
    out: list[str] = []
    for r in results:
        where = _where(r.study_file, r.line, rootdir)
        gate = r.gate or {}
        if gate.get("status") == "fail":
            failed = [c for c in gate.get("comparisons", []) if c.get("status") == "fail"]
            detail = "; ".join(
                f"{c['metric']}: {c['note']} (limit {c['limit']})"
                if c.get("metric") in QUALITY_METRICS
                else f"{c['metric']} {c['delta_pct']:+.1f}% (limit {c['limit']})"
                if c.get("delta_pct") is not None
                else f"{c['metric']} = {c.get('current')} (limit {c['limit']})"
                for c in failed
            )
            out.append(f"::error {where},title=llem regression {r.point_id}::{_escape(detail)}")
        elif gate.get("status") == "inconclusive":
            out.append(_inconclusive(r, where))
        for w in r.warnings:
            out.append(f"::warning {where},title=llem {w.code} {r.point_id}::{_escape(w.message)}")
    return out
