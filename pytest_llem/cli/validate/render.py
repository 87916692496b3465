"""The validation report as markdown (printed and written)."""

from __future__ import annotations

from pytest_llem.cli.validate.analysis import ValidationReport


def _f(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown(report: ValidationReport) -> str:
    """Tables a reviewer reads first: CV per config, counter vs independent integration."""
    lines = ["# pytest-llem measurement validation", ""]
    for key, value in report.machine.items():
        lines.append(f"- {key}: {value}")
    idle = ", ".join(f"{d}: {w:.1f} W" for d, w in report.idle_power_w_probe.items()) or "n/a"
    tol = report.tolerances
    verdict = "PASS" if report.passed else f"FAIL ({len(report.failures)} outside tolerance)"
    lines += [
        f"- idle power (independent probe, before the study): {idle}",
        f"- idle power (plugin's idle baseline): {_f(report.idle_power_w_plugin, 1)} W",
        f"- tolerances: window energy vs independent integration {tol.window_diff_pct:g}%, "
        f"energy CV across cycles {tol.cv_pct:g}%, Zeus vs NVML {tol.zeus_diff_pct:g}%",
        f"- verdict: {verdict}",
    ]
    for device, source in report.power_sources.items():
        lines.append(f"- instant power of {device}: {source}")
    for period_of in report.counter_periods:
        period = _f(period_of.period_ms, 1)
        how = (
            " (moved at every poll: the period is the poll interval or less)" * period_of.every_poll
        )
        lines.append(
            f"- energy counter of {period_of.device}: updates every {period} ms{how} "
            f"({period_of.changes} changes in {period_of.polls} polls)"
        )
    lines += [
        "",
        f"## Cycle-to-cycle variation (limit: CV <= {tol.cv_pct:g}%)",
        "",
        "| config | cycles | energy J | energy CV % | J/token | J/token CV % | tok/s "
        "| throttled s | SM MHz |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for c in report.configs:
        lines.append(
            f"| {c.config} | {c.cycles} | {_f(c.energy_j_mean)} | {_f(c.energy_cv_pct)} "
            f"| {_f(c.j_per_token_mean, 5)} | {_f(c.j_per_token_cv_pct)} "
            f"| {_f(c.tokens_per_s_mean, 1)} | {_f(c.throttle_s, 1)} "
            f"| {_f(c.sm_clock_mhz_mean, 0)} |"
        )
    lines += [
        "",
        "## The plugin's window energy vs the independent process, per window",
        "",
        "plugin J: the NVML total-energy counter delta read by the plugin at its window's "
        "edges. probe power J: a separate process's integration of instant power over the "
        "same timestamps (edges: the meter's own read times, or the sampler's). Zeus J: Zeus "
        "read over the same window beside NVML. The counter moves in steps (see above), so "
        "short windows carry up to one step of error at each edge.",
        "",
        "| window | GPU | s | edges | plugin J | probe power J | diff % | samples | Zeus J "
        "| Zeus vs NVML % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for w in report.windows:
        lines.append(
            f"| {w.point_id} c{w.cycle} | {w.device} | {w.duration_s:.2f} | {w.edges} "
            f"| {_f(w.plugin_j)} | {_f(w.probe_power_j)} | {_f(w.power_diff_pct)} "
            f"| {w.probe_samples} | {_f(w.zeus_j)} | {_f(w.zeus_diff_pct)} |"
        )
    if report.flags:
        lines += [
            "",
            "## Validity flags, per item",
            "",
            "The plugin's checks of each window (disturbed: another process, a clock event or "
            "ECC errors during it; see docs/measurement.md).",
            "",
            "| item | outcome | disturbed | flags |",
            "|---|---|---|---|",
        ]
        for f in report.flags:
            lines.append(
                f"| {f.point_id} c{f.cycle} | {f.outcome} | {'yes' if f.disturbed else 'no'} "
                f"| {'; '.join(f.messages)} |"
            )
    if report.failures:
        lines += ["", "## Outside tolerance", ""] + [f"- {f}" for f in report.failures]
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"
