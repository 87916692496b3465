"""pytest-xdist integration: one worker per GPU, each pinned to its GPU, cycles kept together."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_llem import study
from pytest_llem.energy import nvml
from pytest_llem.measure.concurrency import CODE as CONCURRENT_CODE
from pytest_llem.study.backends import BackendRegistry


def gpu_uuids() -> list[str]:
    """UUIDs of the GPUs this process may use (honouring CUDA_VISIBLE_DEVICES); [] without NVML."""
    return nvml.query(lambda pynvml: [uuid for uuid, _ in nvml.all_handles(pynvml)], [])


def auto_workers() -> int | None:
    """``-n auto``: one worker per GPU, or None (xdist's own default) without GPUs."""
    count = len(gpu_uuids())
    return count or None


def pin_worker_gpu(config: pytest.Config) -> str | None:
    """On an xdist worker, restrict CUDA to the worker's GPU (before anything imports CUDA).

    Worker ``gwN`` gets GPU ``N mod count``, addressed by UUID so CUDA's device order cannot
    pick a different GPU than NVML measures.
    """
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None or os.environ.get("LLEM_NO_GPU_PINNING"):
        return None
    uuids = gpu_uuids()
    if not uuids:
        return None
    index = int(str(workerinput["workerid"]).removeprefix("gw")) % len(uuids)
    os.environ["CUDA_VISIBLE_DEVICES"] = uuids[index]
    return uuids[index]


_CYCLE = re.compile(r"-c[0-9]+$")
_ARM = re.compile(r"-(reference|candidate)$")


def cycle_group(nodeid: str, patterns: tuple[str, ...]) -> str:
    """The scheduling scope of an item: its nodeid without the ``-c<k>`` cycle suffix (and an
    A/B arm's ``-reference``/``-candidate``).

    Items of study files whose names end in a cycle suffix share a scope, so every cycle of a
    config (and both arms of an A/B pair) runs on one worker, whose gate sees them all;
    everything else is its own scope (plain load balancing).
    """
    path, sep, name = nodeid.rpartition("::")
    filename = path.rsplit("/", 1)[-1]
    if sep and any(fnmatch.fnmatch(filename, p) for p in patterns):
        return f"{path}::{_ARM.sub('', _CYCLE.sub('', name))}"
    return nodeid


# Modes that keep every cycle of a config on one worker: ours (load), xdist's per-file modes,
# and no distribution at all. Others can split a config's cycles over workers (worksteal moves
# items, loadgroup groups by marker only, each runs every item on every worker), and the gate
# would judge a config on part of its cycles.
CYCLE_SAFE_DIST = frozenset({"no", "load", "loadscope", "loadfile"})


def cycle_split_problem(dist: str | None, ids: list[str], patterns: tuple[str, ...]) -> str | None:
    """Why ``--dist dist`` cannot run these collected ids, or None when it can."""
    if dist is None or dist in CYCLE_SAFE_DIST:
        return None
    cycled = [i for i in ids if cycle_group(i, patterns) != i]
    if not cycled:
        return None
    return (
        f"--dist {dist} can split the cycles of a config over workers (e.g. {cycled[0]}), and "
        "the gate would judge it on part of its cycles\n"
        "  fix: use -n N with the default --dist load (pytest-llem keeps cycles together), "
        "or --dist loadfile"
    )


def make_scheduler(
    config: pytest.Config, log: Any, dist: str | None, patterns: tuple[str, ...]
) -> Any:
    """For ``--dist load`` (what ``-n`` implies): load balancing that keeps cycles together.

    xdist's own ``loadgroup`` relies on rewriting item nodeids, which pytest 9.2 no longer
    allows (``Node.nodeid`` is derived, not stored), so grouping is done by scope instead,
    overriding ``LoadScopeScheduling._split_scope`` (private: tests/plugin/test_gate.py fails
    if configs stop spreading over workers or cycles stop staying together).
    """
    if dist != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class CycleGroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return cycle_group(nodeid, patterns)

    return CycleGroupScheduling(config, log)


def cpu_item_ids(
    ids: list[str], patterns: tuple[str, ...], rootdir: Path, backends: BackendRegistry
) -> list[str]:
    """The collected ids of study items whose point runs on the CPU (plans are pure to load)."""
    by_file: dict[str, list[str]] = {}
    for nodeid in ids:
        path, sep, name = nodeid.rpartition("::")
        if sep and any(fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in patterns):
            by_file.setdefault(path, []).append(name)
    out: list[str] = []
    for path, names in by_file.items():
        try:
            plan = study.load(rootdir / path, backends, root=rootdir)
        except Exception:  # advice only: the workers report a study's errors themselves
            continue
        cpu = {p.name for p in plan.items() if p.point.config and p.point.config.device == "cpu"}
        out.extend(f"{path}::{n}" for n in names if n in cpu)
    return out


def cpu_sharing_note(workers: int, cpu_ids: list[str]) -> str | None:
    """Advice when several xdist workers would measure CPU items on one CPU at once."""
    if workers < 2 or not cpu_ids:
        return None
    return (
        f"pytest-llem: -n {workers} runs {len(cpu_ids)} CPU study item(s) on {workers} workers "
        "that share this machine's CPU: items measured at the same time measure each other "
        f"(they get a {CONCURRENT_CODE} validity warning)\n"
        "  fix: -n 0 for CPU studies; for GPU studies one worker per GPU (-n auto)"
    )
