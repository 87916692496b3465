"""The pre-flight line: the state of the devices a session is about to measure, with the fix
for each condition that would weaken (or, during a window, disturb) a measurement.

Printed under the collection header, once the plans say which device kinds are in use; cheap
(a quarter of a second of /proc readings, a few NVML calls) and never an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pytest_llem.energy import gpu_state, nvml, procs
from pytest_llem.energy.host_load import HostReader, busiest_others, compare
from pytest_llem.study.plan import StudyPlan

SAMPLE_S = 0.25


def lines(plans: list[StudyPlan], sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """One line for the host and one per GPU when a plan measures on ``cuda``."""
    kinds = {p.config.device for plan in plans for p in plan.valid_points if p.config is not None}
    if not kinds:
        return []
    out = [host_line(HostReader(), sleep)]
    if "cuda" in kinds:
        out.extend(gpu_lines())
    return out


def host_line(reader: HostReader, sleep: Callable[[float], None]) -> str:
    """``llem host: 2 cores, other processes use 61% now (python pid 4242 0.98 cores) ...``."""
    try:
        first, before = reader.snapshot(), reader.processes()
        sleep(SAMPLE_S)
        last, after = reader.snapshot(), reader.processes()
    except OSError as exc:  # no /proc here: say so, measure on
        return f"llem host: not checked ({exc})"
    fig = compare(first, last)
    if fig is None:
        return "llem host: not checked (the CPUs did not tick)"
    cores = f"{fig.cpus} core{'s' if fig.cpus != 1 else ''}"
    parts = [cores, f"other processes use {fig.others_share * 100:.0f}% now"]
    busiest = busiest_others(before, after, set(last.own_pids), fig.seconds)[:3]
    if busiest and fig.others_share > 0.05:
        parts[-1] += " (" + ", ".join(f"{p.comm} pid {p.pid} {c:.2f}" for p, c in busiest) + ")"
    parts.append(f"steal {fig.steal_share * 100:.0f}%")
    if last.governor:
        parts.append(f"governor {last.governor}")
    if last.mem_available is not None:
        parts.append(f"memory {last.mem_available * 100:.0f}% available")
    text = "llem host: " + ", ".join(parts)
    if fig.others_share > 0.05:
        text += (
            "; fix: stop the other work before measuring (items on a busy host are flagged "
            "host_contention and retried, then failed)"
        )
    return text


def gpu_lines() -> list[str]:
    """One line per visible GPU; one saying why when NVML cannot answer."""
    try:
        pynvml = nvml.load()
    except nvml.NvmlUnavailable as exc:
        return [f"llem gpu: not checked ({exc})"]
    try:
        own = procs.own_tree()
        out = []
        for uuid, handle in nvml.all_handles(pynvml):
            said, fixes = gpu_state.at_rest(pynvml, uuid, handle, own)
            index = gpu_state.settings(pynvml, uuid, handle).index
            name = nvml.as_text(gpu_state.get(pynvml, "nvmlDeviceGetName", handle) or "GPU")
            line = f"llem gpu {index if index is not None else uuid} ({name}): " + ", ".join(said)
            out.append(line + (f"; fix: {'; '.join(fixes)}" if fixes else ""))
        return out or ["llem gpu: NVML sees no GPU"]
    except (nvml.NvmlUnavailable, pynvml.NVMLError) as exc:
        return [f"llem gpu: not checked ({exc})"]
    finally:
        nvml.release(pynvml)
