"""The terminal summary: one table per study."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pytest_llem.gate.settle import PairVerdict
from pytest_llem.gate.verdict import Comparison, Verdict, inconclusive_line
from pytest_llem.report.github import gate_cell, gate_rank, pair_quality_cell, quality_cell
from pytest_llem.results.records import ExperimentResult, Metrics

HEADERS = ("item", "outcome", "gate", "out tok/s", "J/token", "energy J", "duration s", "notes")


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def serving_note(m: Metrics) -> str:
    """A serving item's headline: requests/s over the steady state, TTFT and TPOT."""
    parts = [f"{m.request_throughput:.2f} req/s"]
    if m.ttft_ms_p99 is not None:
        parts.append(f"TTFT p99 {m.ttft_ms_p99:.0f} ms")
    if m.tpot_ms_p50 is not None:
        parts.append(f"TPOT p50 {m.tpot_ms_p50:.1f} ms")
    if m.energy_per_request_j is not None:
        parts.append(f"{m.energy_per_request_j:.3g} J/req")
    return "serving: " + ", ".join(parts)


def row(result: ExperimentResult) -> tuple[str, ...]:
    """One table row for a result."""
    m = result.metrics
    notes = ""
    if m is not None and m.request_throughput is not None:
        notes = serving_note(m)
    if result.energy is not None and result.energy.reason and m is not None:
        notes = ", ".join([*([notes] if notes else []), f"energy: {result.energy.reason}"])
    if result.warnings:
        notes = ", ".join([*([notes] if notes else []), *(w.label() for w in result.warnings)])
    if result.outcome in ("skipped", "failed", "error") and result.message:
        lines = [ln.strip() for ln in result.message.splitlines() if ln.strip()]
        # A heading such as "pre-flight failed:" says little alone: show its first point too.
        first = " ".join(lines[:2]) if len(lines) > 1 and lines[0].endswith(":") else lines[0]
        notes = first if len(first) <= 70 else first[:67] + "..."
    return (
        result.nodeid.rsplit("::", 1)[-1],
        result.outcome,
        gate_cell(result),
        _fmt(m.output_tokens_per_s if m else None, ".1f"),
        _fmt(m.energy_per_output_token_j if m else None, ".4f"),
        _fmt(m.energy_j if m else None, ".1f"),
        _fmt(m.duration_s if m else None, ".2f"),
        notes,
    )


def table(rows: Sequence[Sequence[str]], headers: Sequence[str] = HEADERS) -> list[str]:
    """Left-aligned text table with a rule under the header."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def with_column(
    headers: Sequence[str], rows: Sequence[Sequence[str]], name: str, cells: Sequence[str]
) -> tuple[list[str], list[tuple[str, ...]]]:
    """The table with a column ``name`` after "energy J"."""
    at = list(headers).index("energy J") + 1
    return (
        [*headers[:at], name, *headers[at:]],
        [(*r[:at], cell, *r[at:]) for r, cell in zip(rows, cells, strict=True)],
    )


def inconclusive_notes(results: Iterable[ExperimentResult]) -> list[str]:
    """Under the table: why each inconclusive verdict could not be decided."""
    lines = []
    for r in results:
        gate = r.gate or {}
        if gate.get("status") != "inconclusive" or gate.get("decided_by"):
            continue  # said once, for the item that decided it
        effect = "failed" if gate.get("inconclusive", "fail") == "fail" else "warning only"
        for c in gate.get("comparisons", []):
            if c.get("status") == "inconclusive":
                comp = Comparison.model_validate(c)
                lines.append(f"inconclusive ({effect}): {r.point_id}: {inconclusive_line(comp)}")
    return lines


def pair_row(pair: PairVerdict, policy: str) -> tuple[str, ...]:
    """The A/B pair's own row: its verdict, candidate against reference."""
    verdict = Verdict.model_validate({**pair.verdict, "inconclusive": policy})
    comparisons = [c.model_dump() for c in verdict.comparisons]
    status = verdict.status
    worst = next((c for c in comparisons if c["status"] == status), None)
    cell: str = status
    if worst is not None and worst.get("ratio") is not None:
        cell = f"{status} ({worst['metric']} ratio {worst['ratio']:.3f})"
    outcome = "failed" if verdict.failed else "passed"
    return (pair.nodeid.rsplit("::", 1)[-1], outcome, cell, "", "", "", "", "candidate / reference")


def _pair_rank(pair: PairVerdict) -> int:
    status = pair.verdict.get("status")
    return 0 if status == "fail" else 1 if status == "inconclusive" else 2


def summary_lines(
    results: Iterable[ExperimentResult], pairs: Sequence[PairVerdict] = (), policy: str = "fail"
) -> list[str]:
    """Lines of the per-study tables, studies in first-seen order; an A/B study's pairs have
    rows of their own (``<pair>[ab]``) above their arms'."""
    by_study: dict[tuple[str, str], list[ExperimentResult]] = {}
    for result in results:
        by_study.setdefault((result.study, result.study_hash), []).append(result)
    lines: list[str] = []
    for (name, digest), items in by_study.items():
        lines.append(f"Study {name} [{digest}]")
        # Regressions first, then undecided limits: the rows a reviewer must read.
        ordered = sorted(items, key=gate_rank)
        mine = sorted((p for p in pairs if p.study_hash == digest), key=_pair_rank)
        rows = [pair_row(p, policy) for p in mine] + [row(r) for r in ordered]
        headers: Sequence[str] = HEADERS
        if any(r.quality is not None for r in items):  # the answers, beside the energy
            cells = [pair_quality_cell(p.verdict.get("comparisons", [])) for p in mine]
            headers, rows = with_column(
                HEADERS, rows, "quality", cells + [quality_cell(r) for r in ordered]
            )
        lines.extend(table(rows, headers))
        lines.extend(inconclusive_notes(ordered))
        lines.append("")
    return lines
