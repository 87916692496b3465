"""The pre-flight line: host and GPU state before any item runs, with the fixes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytest_llem.energy.host_load import HostReader
from pytest_llem.harness import device_state
from pytest_llem.testing import load_study
from tests.unit.energy.test_host_load import pid_line, write_proc


def busy_proc(root: Path, second: bool) -> None:
    """2 cores over a quarter second (50 ticks): 45 busy, 40 of them a burner's."""
    stat = "cpu0 {b} 0 0 {i} 0 0 0 0 0 0\ncpu1 {b} 0 0 {i} 0 0 0 0 0 0\n"
    busy, idle = (1022, 3) if second else (1000, 0)
    pids = {10: pid_line(10, 1, 100 + (5 if second else 0), comm="pytest")}
    pids[20] = pid_line(20, 1, 500 + (40 if second else 0), comm="burner")
    write_proc(root, stat.format(b=busy, i=idle), pids, psi=None)


def test_host_line_names_the_busiest_others_and_the_fix(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    busy_proc(proc, second=False)
    reader = HostReader(proc, tmp_path / "sys", root=10)
    line = device_state.host_line(reader, lambda s: busy_proc(proc, second=True))
    assert line.startswith("llem host: 2 cores, other processes use 78% now (burner pid 20 ")
    # The recorded meminfo has 5% of memory available.
    assert "memory 5% available" in line and "fix: stop the other work" in line


def test_host_line_of_a_quiet_host_has_no_fix(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    write_proc(proc, "cpu0 0 0 0 0 0 0 0 0 0 0\n", {10: pid_line(10, 1, 0)})

    def tick(_: float) -> None:
        write_proc(proc, "cpu0 25 0 0 0 0 0 0 0 0 0\n", {10: pid_line(10, 1, 25)})

    line = device_state.host_line(HostReader(proc, tmp_path / "sys", root=10), tick)
    assert line == "llem host: 1 core, other processes use 0% now, steal 0%, memory 5% available"


def study_plan(tmp_path: Path, device: str) -> Any:
    path = tmp_path / "study_x.yaml"
    path.write_text(f"model: gpt2\ndevice: {device}\n", encoding="utf-8")
    return load_study(path)


def test_lines_per_device_kind(fake_nvml: Any, tmp_path: Path) -> None:
    gpu = fake_nvml.add("GPU-a", persistence=0, sm_clock_mhz=300, name="NVIDIA A100")
    gpu.pids = [os.getppid()]
    cpu_only = device_state.lines([study_plan(tmp_path, "cpu")], sleep=lambda s: None)
    assert len(cpu_only) == 1 and cpu_only[0].startswith("llem host:")
    lines = device_state.lines([study_plan(tmp_path, "cuda")], sleep=lambda s: None)
    assert lines[1].startswith(
        "llem gpu 0 (NVIDIA A100): persistence off, clocks not locked (SM 300 of 1980 MHz at "
        f"rest), other processes: pid {os.getppid()} ("
    )
    assert lines[1].endswith(
        "; fix: sudo nvidia-smi -i 0 -pm 1; sudo nvidia-smi -i 0 --lock-gpu-clocks=1755,1755; "
        "stop them (nvidia-smi lists them) or pick another GPU"
    )
    assert device_state.lines([], sleep=lambda s: None) == []


def test_no_nvml_says_so(fake_nvml: Any) -> None:
    fake_nvml.init_error = fake_nvml.real.NVML_ERROR_LIBRARY_NOT_FOUND
    [line] = device_state.gpu_lines()
    assert line.startswith("llem gpu: not checked (no NVML: NVMLError_LibraryNotFound")
