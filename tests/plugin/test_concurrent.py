"""Items measured while another item runs on the same device are flagged, and fail under
``validity.fail_on``. The other item is this test process, marked active on this host's CPU
for the whole inner session: an overlap by construction, with no timing involved."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.measure.concurrency import DeviceActivity, device_keys

StudyText = Callable[..., str]


def test_an_item_sharing_its_cpu_is_flagged_and_fails_under_fail_on(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: StudyText
) -> None:
    text = fast_study(tiny_gpt2, "sweep:\n  n: [1, 2]\n").replace(
        "validity: {min_window_s: 0, min_samples: 0}",
        "validity: {min_window_s: 0, min_samples: 0, fail_on: [concurrent_measurement]}",
    )
    pytester.makefile(".yaml", study_share=text)
    keys = device_keys(BuiltinConfig(model="m", device="cpu"))
    neighbour = DeviceActivity(pytester.path / "out" / ".active").begin(keys, "other.yaml::x")
    try:
        result = pytester.runpytest("--llem-results=out")
    finally:
        told = neighbour.end()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*concurrent_measurement: measured while other.yaml::x ran*"])
    assert told == ["study_share.yaml::pytorch-n1", "study_share.yaml::pytorch-n2"]
    items = json.loads((pytester.path / "out" / "report.json").read_text())["items"]
    assert all("concurrent_measurement" in [w["code"] for w in i["warnings"]] for i in items)
