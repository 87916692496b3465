"""Reload-aware order on a real session: an interleaved study over two load configurations
loads the model K + C - 1 times, and the report and terminal say how many and how long."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


def test_interleaved_two_precisions_three_cycles_load_four_times(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: Callable[..., str]
) -> None:
    text = fast_study(
        tiny_gpt2,
        "sweep:\n  precision: [fp32, bf16]\nexecution: {n_cycles: 3, cycle_order: interleaved}\n",
    ).replace("precision: fp32\n", "")
    pytester.makefile(".yaml", study_p=text)
    result = pytester.runpytest("--llem-results=out")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(
        [
            "  4 model loads planned for 2 load configurations (interleaved order)",
            "model loads: 4 (* s loading)",
        ]
    )
    report = json.loads((pytester.path / "out" / "report.json").read_text())
    items = report["items"]
    assert [(i["point_id"], i["cycle"]) for i in items] == [
        ("pytorch-fp32", 1),
        ("pytorch-bf16", 1),
        ("pytorch-bf16", 2),  # the round runs backwards: bf16 is still loaded
        ("pytorch-fp32", 2),
        ("pytorch-fp32", 3),
        ("pytorch-bf16", 3),
    ]
    assert [i["model_cached"] for i in items] == [False, False, True, False, True, False]
    session = report["session"]
    assert session["model_loads"] == 4
    loaded = sum(i["model_load_s"] for i in items if not i["model_cached"])
    assert session["model_load_s"] == pytest.approx(loaded, abs=0.01)
