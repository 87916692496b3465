"""pytest-html integration through its hooks (no import of pytest-html, no dependency on it).

Each study item's row gets a column with its throughput, energy per token and energy source,
and its detail view the metrics, the energy source (or why there is none) and the validity
warnings. Items that are not study items get an empty cell.
"""

from __future__ import annotations

from html import escape
from typing import Any

HEADER = '<th class="col-llem">llem</th>'


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _measurement(report: Any) -> dict[str, Any] | None:
    if getattr(report, "when", None) != "call":
        return None
    measurement = getattr(report, "llem_measurement", None)
    return measurement if isinstance(measurement, dict) else None


def header(cells: list[str]) -> None:
    """Add the llem column before the links column (pytest-html's last)."""
    cells.insert(max(len(cells) - 1, 0), HEADER)


def row(report: Any, cells: list[str]) -> None:
    """The item's throughput, J/token and energy source, or an empty cell."""
    measurement = _measurement(report)
    text = ""
    if measurement is not None:
        metrics = measurement.get("metrics") or {}
        source = (measurement.get("energy") or {}).get("source") or "none"
        text = (
            f"{_fmt(metrics.get('output_tokens_per_s'), '.1f')} tok/s, "
            f"{_fmt(metrics.get('energy_per_output_token_j'), '.4f')} J/token, energy: {source}"
        )
    cells.insert(max(len(cells) - 1, 0), f'<td class="col-llem">{escape(text)}</td>')


def details(report: Any, data: list[str]) -> None:
    """Metrics, energy source and validity warnings in the item's detail view."""
    measurement = _measurement(report)
    if measurement is None:
        return
    energy = measurement.get("energy") or {}
    lines = ["pytest-llem measurement"]
    lines.append(
        f"energy source: {energy.get('source') or 'none'}"
        + (f" ({energy['reason']})" if energy.get("reason") else "")
    )
    warnings = measurement.get("warnings") or []
    lines.append(
        "validity warnings: "
        + ("; ".join(f"{w['code']}: {w['message']}" for w in warnings) if warnings else "none")
    )
    for name, value in (measurement.get("metrics") or {}).items():
        if value is not None:
            lines.append(f"  {name} = {value}")
    if data == ["No log output captured."]:
        data.clear()
    data.append(escape("\n".join(lines)) + "\n")
