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
    lines += [
        f"- idle power (independent probe, before the study): {idle}",
        f"- idle power (plugin's idle baseline): {_f(report.idle_power_w_plugin, 1)} W",
        "",
        "## Cycle-to-cycle variation (goal: CV <= 0.8%)",
        "",
        "| config | cycles | energy J | energy CV % | J/token | J/token CV % | tok/s "
        "| throttled s | SM MHz | Zeus J/token | Zeus vs NVML % |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in report.configs:
        lines.append(
            f"| {c.config} | {c.cycles} | {_f(c.energy_j_mean)} | {_f(c.energy_cv_pct)} "
            f"| {_f(c.j_per_token_mean, 5)} | {_f(c.j_per_token_cv_pct)} "
            f"| {_f(c.tokens_per_s_mean, 1)} | {_f(c.throttle_s, 1)} "
            f"| {_f(c.sm_clock_mhz_mean, 0)} | {_f(c.zeus_j_per_token_mean, 5)} "
            f"| {_f(c.zeus_vs_nvml_pct)} |"
        )
    lines += [
        "",
        "## Counter energy vs the independent process, per window",
        "",
        "plugin J: NVML total-energy counter delta read by the plugin at the window edges. "
        "probe counter J: the same counter read by a separate process. probe power J: that "
        "process's integration of instant power (the A100/H100 sensor averages about 25 ms "
        "of every 100 ms, so the integration is expected to differ more than the counter).",
        "",
        "| window | GPU | s | plugin J | probe counter J | diff % | probe power J | diff % "
        "| samples |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for w in report.windows:
        lines.append(
            f"| {w.point_id} c{w.cycle} | {w.device} | {w.duration_s:.2f} | {_f(w.plugin_j)} "
            f"| {_f(w.probe_counter_j)} | {_f(w.counter_diff_pct)} | {_f(w.probe_power_j)} "
            f"| {_f(w.power_diff_pct)} | {w.probe_samples} |"
        )
    if report.notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"
