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
        props.append(("llem.gate", verdict.status))
        for comp in verdict.comparisons:
            if comp.delta_pct is not None:
                props.append((f"llem.gate.{comp.metric}.delta_pct", round(comp.delta_pct, 3)))
            if comp.p_value is not None:
                props.append((f"llem.gate.{comp.metric}.p_value", comp.p_value))
            if comp.status == "inconclusive":
                props.append((f"llem.gate.{comp.metric}.status", comp.status))
                for key in ("p_within", "cv_current", "cv_baseline", "cycles_needed"):
                    value = getattr(comp, key)
                    if value is not None:
                        props.append((f"llem.gate.{comp.metric}.{key}", value))
    return [(name, redact(value) if isinstance(value, str) else value) for name, value in props]
