"""Our own process tree, for telling our GPU users from others'."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pytest_llem.energy import nvml, procs
from pytest_llem.energy.nvml_facts import device_facts


def _stat(root: Path, pid: int, ppid: int, name: str) -> None:
    (root / str(pid)).mkdir()
    (root / str(pid) / "stat").write_text(f"{pid} ({name}) S {ppid} 1 1 0\n")


def test_tree_follows_children_and_odd_command_names(tmp_path: Path) -> None:
    _stat(tmp_path, 10, 1, "pytest")
    _stat(tmp_path, 11, 10, "VLLM::EngineCore")
    _stat(tmp_path, 12, 11, "a (b) c")  # parentheses and spaces in the name
    _stat(tmp_path, 13, 12, "VLLM::Worker")
    _stat(tmp_path, 20, 1, "neighbour")
    (tmp_path / "self").mkdir()  # not a pid
    assert procs.own_tree(10, tmp_path) == {10, 11, 12, 13}


def test_a_real_child_is_ours_and_the_parent_is_not() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        tree = procs.own_tree()
        assert os.getpid() in tree and child.pid in tree and os.getppid() not in tree
    finally:
        child.communicate(b"")


def test_own_children_on_the_gpu_raise_no_foreign_process_warning(fake_nvml: Any) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        gpu = fake_nvml.add("GPU-a", pids=[os.getpid(), child.pid])
        pynvml = nvml.load()
        handles = nvml.resolve_handles(pynvml, [nvml.GpuRef(0, gpu.uuid)])
        assert device_facts(pynvml, handles) == []
        gpu.pids.append(os.getppid())  # not ours
        facts = device_facts(pynvml, handles)
        assert [c for c, _ in facts] == ["gpu_foreign_process"] and str(os.getppid()) in facts[0][1]
        nvml.release(pynvml)
    finally:
        child.communicate(b"")
