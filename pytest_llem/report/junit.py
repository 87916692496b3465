"""JUnit properties: ``llem.<metric>`` as primitives, so they survive pytest-xdist."""

from __future__ import annotations

from pytest_llem.gate.quality_figures import QUALITY_METRICS
from pytest_llem.gate.verdict import Comparison, Verdict
from pytest_llem.results.records import Measurement, QualityRecord
from pytest_llem.results.redact import redact
from pytest_llem.study.plan import Point


def properties(
    point: Point, cycle: int, measurement: Measurement, verdict: Verdict | None = None
) -> list[tuple[str, object]]:
    """The item's identity, metrics and energy provenance as JUnit user properties."""
    props: list[tuple[str, object]] = [
        ("llem.point_id", point.id),
        ("llem.config_hash", point.config_hash),
        ("llem.cycle", cycle),
    ]
    if point.arm is not None:
        props.append(("llem.arm", point.arm))
    for name, value in measurement.metrics.model_dump().items():
        if value is not None:
            props.append((f"llem.{name}", value))
    energy = measurement.energy
    props.append(("llem.energy_source", energy.source or "none"))
    if energy.method:
        props.append(("llem.energy_method", energy.method))
    if energy.reason:
        props.append(("llem.energy_reason", energy.reason))
    if measurement.warnings:
        props.append(("llem.warnings", ",".join(w.code for w in measurement.warnings)))
        # Each warning's words and figures: ``llem.warning.host_contention`` = "61% of 2 ...".
        props.extend((f"llem.warning.{w.code}", w.message) for w in measurement.warnings)
    if verdict is not None:
        props.extend(gate_properties(verdict))
    if measurement.quality is not None:
        props.extend(quality_properties(measurement.quality))
    return [(name, redact(value) if isinstance(value, str) else value) for name, value in props]


def quality_properties(record: QualityRecord) -> list[tuple[str, object]]:
    """The item's answers in figures: ``llem.quality.output_tokens_per_request``, perplexity."""
    props: list[tuple[str, object]] = [
        ("llem.quality.output_tokens_per_request", record.output_tokens_per_request)
    ]
    if record.perplexity is not None:
        props.append(("llem.quality.perplexity", record.perplexity))
    if record.note:
        props.append(("llem.quality.note", record.note))
    return props


def _quality_evidence(head: str, comp: Comparison) -> list[tuple[str, object]]:
    """A quality comparison's figures: its status, both sides, how many prompts agreed."""
    props: list[tuple[str, object]] = [(f"{head}.status", comp.status)]
    props += [
        (f"{head}.{key}", getattr(comp, key))
        for key in ("baseline", "current")
        if getattr(comp, key) is not None
    ]
    found = comp.agreement
    if found is not None:
        props += [
            (f"{head}.{key}", getattr(found, key))
            for key in ("prompts", "exact", "close", "diverged", "unknown")
        ]
        far = found.first_far()
        if far is not None:
            props.append((f"{head}.first_divergence", f"prompt {far.prompt} token {far.position}"))
    return props


def gate_properties(verdict: Verdict) -> list[tuple[str, object]]:
    """The verdict and, per comparison, its delta and p; the evidence of paired and
    inconclusive ones."""
    props: list[tuple[str, object]] = [("llem.gate", verdict.status)]
    for comp in verdict.comparisons:
        head = f"llem.gate.{comp.metric}"
        if comp.delta_pct is not None:
            props.append((f"{head}.delta_pct", round(comp.delta_pct, 3)))
        if comp.p_value is not None:
            props.append((f"{head}.p_value", comp.p_value))
            props.append((f"{head}.p_side", comp.p_side or ""))
        if comp.ci is not None:
            props += [(f"{head}.ratio_ci_low", comp.ci[0]), (f"{head}.ratio_ci_high", comp.ci[1])]
        keys: tuple[str, ...] = ("ratio",)
        if comp.kind == "paired":
            props.append((f"{head}.kind", "paired"))
            keys += ("pairs_cv", "min_detectable_change", "test")
        if comp.metric in QUALITY_METRICS:
            props.extend(_quality_evidence(head, comp))
        elif comp.status == "inconclusive" or comp.kind == "paired":
            props.append((f"{head}.status", comp.status))
        if comp.status == "inconclusive":
            keys += ("cv_current", "cv_baseline", "cycles_needed")
        props.extend(
            (f"{head}.{key}", getattr(comp, key)) for key in keys if getattr(comp, key) is not None
        )
    return props
