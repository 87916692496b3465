"""pytest-html hooks: a column and a detail view for study items, nothing for other tests."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pytest_llem.report import html

MEASUREMENT: dict[str, Any] = {
    "metrics": {"output_tokens_per_s": 26.4, "energy_per_output_token_j": None, "passes": 2},
    "energy": {"source": None, "reason": "no RAPL: /sys/class/powercap absent"},
    "warnings": [{"code": "short_window", "message": "window lasted 0.1s < 5s"}],
}


def _cells() -> list[str]:
    return ["<td>result</td>", "<td>id</td>", "<td>duration</td>", "<td>links</td>"]


def test_a_study_item_shows_its_figures_energy_source_and_warnings() -> None:
    report = SimpleNamespace(when="call", llem_measurement=MEASUREMENT)
    header = _cells()
    html.header(header)
    assert header[3] == html.HEADER and len(header) == 5
    cells = _cells()
    html.row(report, cells)
    assert "26.4 tok/s, n/a J/token, energy: none" in cells[3]
    data = ["No log output captured."]
    html.details(report, data)
    [text] = data
    assert "energy source: none (no RAPL: /sys/class/powercap absent)" in text
    assert "short_window: window lasted 0.1s &lt; 5s" in text  # escaped
    assert "output_tokens_per_s = 26.4" in text and "energy_per_output_token_j" not in text


def test_other_tests_get_an_empty_cell_and_no_details() -> None:
    report = SimpleNamespace(when="call")
    cells = _cells()
    html.row(report, cells)
    assert cells[3] == '<td class="col-llem"></td>'
    data = ["log"]
    html.details(report, data)
    assert data == ["log"]
