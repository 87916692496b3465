"""Concurrent measurement on one device is detected by the items themselves: both items of an
overlapping pair are told, whichever started first, across processes, with no clock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.measure.concurrency import CODE, DeviceActivity, device_keys, warning

CPU = ["host/cpu"]


def test_overlapping_items_on_one_device_are_both_told(tmp_path: Path) -> None:
    a = DeviceActivity(tmp_path, pid=1, host="host")
    b = DeviceActivity(tmp_path, pid=2, host="host")
    span_a = a.begin(CPU, "s.yaml::a")
    span_b = b.begin(CPU, "s.yaml::b")
    assert span_b.end() == ["s.yaml::a"]  # b ran inside a's span
    assert span_a.end() == ["s.yaml::b"]  # and a is told, by the mark b left for it


def test_items_one_after_the_other_are_not_told(tmp_path: Path) -> None:
    activity = DeviceActivity(tmp_path)
    assert activity.begin(CPU, "s.yaml::a").end() == []
    assert activity.begin(CPU, "s.yaml::b").end() == []
    assert list(tmp_path.rglob("*.json")) == []  # nothing left behind


def test_other_devices_do_not_count(tmp_path: Path) -> None:
    activity = DeviceActivity(tmp_path)
    span = activity.begin(["host/cuda/GPU-0"], "s.yaml::a")
    assert activity.begin(["host/cuda/GPU-1"], "s.yaml::b").end() == []
    assert span.end() == []


def test_the_file_of_a_dead_process_is_ignored_and_removed(tmp_path: Path) -> None:
    crashed = DeviceActivity(tmp_path, pid=999, host="host")
    crashed.begin(CPU, "s.yaml::crashed")  # never ended: its process died
    alive = DeviceActivity(tmp_path, alive=lambda host, pid: pid != 999, pid=1, host="host")
    assert alive.begin(CPU, "s.yaml::b").end() == []
    assert list(tmp_path.rglob("*.json")) == []


CHILD = """
import sys
from pathlib import Path
from pytest_llem.measure.concurrency import DeviceActivity
print(DeviceActivity(Path(sys.argv[1])).begin(["host/cpu"], "s.yaml::child").end())
"""


def test_another_process_is_seen_and_tells_this_one(tmp_path: Path) -> None:
    span = DeviceActivity(tmp_path).begin(CPU, "s.yaml::parent")
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert child.stdout.strip() == "['s.yaml::parent']"
    assert span.end() == ["s.yaml::child"]


def test_device_keys_follow_the_device_and_the_visible_gpus() -> None:
    cpu = BuiltinConfig(model="m", device="cpu")
    cuda = BuiltinConfig(model="m", device="cuda")
    assert device_keys(cpu, {}, "h") == ["h/cpu"]
    assert device_keys(cuda, {"CUDA_VISIBLE_DEVICES": "GPU-a,GPU-b"}, "h") == [
        "h/cuda/GPU-a",
        "h/cuda/GPU-b",
    ]
    assert device_keys(cuda, {}, "h") == ["h/cuda/all"]


def test_the_warning_names_the_others_and_the_fix() -> None:
    found = warning(["a", "b", "c", "d"], ["h/cpu"])
    assert found.code == CODE == "concurrent_measurement"
    assert "a, b, c and 1 more" in found.message and "-n 0" in found.message


def test_validity_fail_on_can_name_it() -> None:
    from pytest_llem.study.measurement import ValidityConfig

    assert ValidityConfig(fail_on=("concurrent_measurement",)).fail_on == (CODE,)
