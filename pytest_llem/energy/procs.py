"""This process and its descendants, read from /proc (no dependency).

A GPU used by one of our own children is not "another process": vLLM's V1 engine runs the
model in its EngineCore and worker processes, which NVML lists beside the pytest process.
"""

from __future__ import annotations

import os
from pathlib import Path


def _parents(proc: Path) -> dict[int, int]:
    """pid -> parent pid for every readable process."""
    out: dict[int, int] = {}
    try:
        entries = list(proc.iterdir())
    except OSError:
        return out
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile, or not ours to read
        # The command name (2nd field) may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1].isdigit():
            out[int(entry.name)] = int(fields[1])
    return out


def own_tree(root: int | None = None, proc: Path = Path("/proc")) -> set[int]:
    """``root`` (default: this process) and every process descended from it."""
    top = os.getpid() if root is None else root
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents(proc).items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = {top}, [top]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in tree:
                tree.add(child)
                todo.append(child)
    return tree
