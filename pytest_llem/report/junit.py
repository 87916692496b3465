"""JUnit properties: ``llem.<metric>`` as primitives, so they survive pytest-xdist."""

from __future__ import annotations

from pytest_llem.gate.verdict import Verdict
from pytest_llem.results.records import Measurement
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
    if verdict is not None:
        props.extend(gate_properties(verdict))
    return [(name, redact(value) if isinstance(value, str) else value) for name, value in props]


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
        if comp.status == "inconclusive" or comp.kind == "paired":
            props.append((f"{head}.status", comp.status))
        if comp.status == "inconclusive":
            keys += ("cv_current", "cv_baseline", "cycles_needed")
        props.extend(
            (f"{head}.{key}", getattr(comp, key)) for key in keys if getattr(comp, key) is not None
        )
    return props
