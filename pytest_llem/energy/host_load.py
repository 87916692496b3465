"""What else the host did during a window, read from /proc and /sys (no dependency): CPU time of
processes other than the run's own, steal time, memory pressure, CPU frequency.

Two snapshots bracket a window and ``findings`` compares them. Others' share of the CPUs:

    (busy jiffies of the run's CPUs - jiffies of the run's process tree) / all jiffies of them

where the run's CPUs are its affinity set (a cpuset container sees the host's /proc/stat) and
its process tree is this process and every descendant (vLLM's engine and workers included),
with the reaped children's time (``cutime``/``cstime``), so a worker that exits within the
window still counts as ours. A reader with other roots (a recorded /proc) makes it testable.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from pytest_llem.results.records import ValidityWarning

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # jiffies per second


@dataclass(frozen=True)
class CpuTimes:
    """Jiffies summed over a set of CPUs (``/proc/stat``)."""

    busy: int  # user + nice + system + irq + softirq (guest time is inside user and nice)
    idle: int  # idle + iowait
    steal: int

    @property
    def total(self) -> int:
        """Every jiffy of these CPUs."""
        return self.busy + self.idle + self.steal


def parse_proc_stat(text: str, cpus: set[int] | None = None) -> tuple[CpuTimes, int]:
    """Times of the ``cpuN`` lines for N in ``cpus`` (all when None), and how many there were."""
    busy = idle = steal = count = 0
    for line in text.splitlines():
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu":
            continue
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        v = [int(x) for x in rest.split()] + [0] * 8
        # user nice system idle iowait irq softirq steal guest guest_nice
        busy += v[0] + v[1] + v[2] + v[5] + v[6]
        idle += v[3] + v[4]
        steal += v[7]
        count += 1
    return CpuTimes(busy, idle, steal), count


@dataclass(frozen=True)
class ProcTimes:
    """One process from ``/proc/<pid>/stat``: its parent, name and CPU time in jiffies."""

    pid: int
    ppid: int
    comm: str
    jiffies: int  # utime + stime + cutime + cstime


def parse_pid_stat(pid: int, text: str) -> ProcTimes | None:
    """Parse one stat line; None when it is not one."""
    close = text.rfind(")")
    if close < 0:
        return None
    comm = text[text.find("(") + 1 : close]
    # The command name may hold spaces and parentheses: fields start after the last ')'.
    fields = text[close + 2 :].split()
    if len(fields) < 15:
        return None
    try:
        ppid = int(fields[1])
        jiffies = sum(int(fields[i]) for i in (11, 12, 13, 14))
    except ValueError:
        return None
    return ProcTimes(pid, ppid, comm, jiffies)


def tree(procs: dict[int, ProcTimes], root: int) -> set[int]:
    """``root`` and every process descended from it."""
    children: dict[int, list[int]] = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p.pid)
    found, todo = {root}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def parse_psi_some_total(text: str) -> int | None:
    """``total=`` of the ``some`` line of a PSI file (microseconds stalled)."""
    for line in text.splitlines():
        if line.startswith("some "):
            for part in line.split():
                if part.startswith("total="):
                    return int(part[6:])
    return None


def parse_mem_available(text: str) -> float | None:
    """MemAvailable / MemTotal from ``/proc/meminfo``."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable") and rest.split():
            values[key] = int(rest.split()[0])
    if values.get("MemTotal") and "MemAvailable" in values:
        return values["MemAvailable"] / values["MemTotal"]
    return None


@dataclass(frozen=True)
class HostSnapshot:
    """The host at one moment, as far as a window's findings need it."""

    t: float  # monotonic seconds
    cpus: int
    times: CpuTimes
    own_jiffies: int
    own_pids: frozenset[int]
    psi_some_us: int | None = None  # /proc/pressure/memory, None without PSI
    mem_available: float | None = None  # fraction of MemTotal
    mhz: float | None = None  # mean current frequency of the run's CPUs
    max_mhz: float | None = None
    governor: str | None = None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, ValueError):
        return None


def _affinity() -> set[int] | None:
    getter = getattr(os, "sched_getaffinity", None)
    return set(getter(0)) if getter is not None else None


class HostReader:
    """Takes snapshots from ``proc`` and ``sys`` roots (the real ones unless told)."""

    def __init__(
        self,
        proc: Path = Path("/proc"),
        sys: Path = Path("/sys"),
        root: int | None = None,
        cpus: set[int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.proc = proc
        self.sys = sys
        self.root = os.getpid() if root is None else root
        self.cpus = _affinity() if cpus is None and proc == Path("/proc") else cpus
        self.clock = clock

    def processes(self) -> dict[int, ProcTimes]:
        """Every readable process."""
        out: dict[int, ProcTimes] = {}
        try:
            entries = [e for e in self.proc.iterdir() if e.name.isdigit()]
        except OSError:
            return out
        for entry in entries:
            text = _read(entry / "stat")  # None: exited meanwhile, or not ours to read
            parsed = parse_pid_stat(int(entry.name), text) if text else None
            if parsed is not None:
                out[parsed.pid] = parsed
        return out

    def _frequency(self) -> tuple[float | None, float | None, str | None]:
        cur: list[float] = []
        top: list[float] = []
        governor = None
        for cpu in sorted(self.cpus) if self.cpus is not None else [0]:
            base = self.sys / "devices/system/cpu" / f"cpu{cpu}" / "cpufreq"
            now, most = _read(base / "scaling_cur_freq"), _read(base / "cpuinfo_max_freq")
            if now and now.strip().isdigit():
                cur.append(int(now) / 1000.0)  # kHz
            if most and most.strip().isdigit():
                top.append(int(most) / 1000.0)
            governor = governor or (_read(base / "scaling_governor") or "").strip() or None
        mean = sum(cur) / len(cur) if cur else None
        return mean, (max(top) if top else None), governor

    def snapshot(self) -> HostSnapshot:
        """Read everything once (a few milliseconds: one stat file per process)."""
        t = self.clock()
        stat = _read(self.proc / "stat") or ""
        times, count = parse_proc_stat(stat, self.cpus)
        procs = self.processes()
        own = tree(procs, self.root)
        psi = _read(self.proc / "pressure/memory")
        meminfo = _read(self.proc / "meminfo")
        mhz, max_mhz, governor = self._frequency()
        return HostSnapshot(
            t=t,
            cpus=count,
            times=times,
            own_jiffies=sum(procs[p].jiffies for p in own if p in procs),
            own_pids=frozenset(own),
            psi_some_us=parse_psi_some_total(psi) if psi else None,
            mem_available=parse_mem_available(meminfo) if meminfo else None,
            mhz=mhz,
            max_mhz=max_mhz,
            governor=governor,
        )


@dataclass(frozen=True)
class HostFigures:
    """What the host did between two snapshots (shares are fractions of the run's CPUs)."""

    seconds: float
    cpus: int
    others_share: float
    others_cores: float
    own_cores: float
    steal_share: float
    idle_share: float
    memory_pressure: float | None  # share of the time some task stalled on memory
    mem_available: float | None
    mhz: float | None
    max_mhz: float | None

    def as_dict(self) -> dict[str, float | int | None]:
        """Rounded figures for the result."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def compare(start: HostSnapshot, end: HostSnapshot) -> HostFigures | None:
    """Figures of the span between two snapshots; None when the CPUs did not tick."""
    total = end.times.total - start.times.total
    if total <= 0 or end.cpus == 0:
        return None
    busy = end.times.busy - start.times.busy
    own = max(0, end.own_jiffies - start.own_jiffies)
    others = max(0, busy - own) / total
    seconds = max(0.0, end.t - start.t)
    pressure = None
    if start.psi_some_us is not None and end.psi_some_us is not None and seconds > 0:
        pressure = min(1.0, (end.psi_some_us - start.psi_some_us) / (seconds * 1e6))
    return HostFigures(
        seconds=seconds,
        cpus=end.cpus,
        others_share=others,
        others_cores=others * end.cpus,
        own_cores=min(1.0, own / total) * end.cpus,
        steal_share=(end.times.steal - start.times.steal) / total,
        idle_share=(end.times.idle - start.times.idle) / total,
        memory_pressure=pressure,
        mem_available=end.mem_available,
        mhz=end.mhz,
        max_mhz=end.max_mhz,
    )


@dataclass(frozen=True)
class HostLimits:
    """Thresholds of the host findings (``validity.max_*``)."""

    max_contention: float = 0.25
    max_steal: float = 0.10
    max_memory_pressure: float = 0.10
    # /proc/stat counts in jiffies (10 ms): below a second a few ticks either way move a
    # share by several percent, so shorter windows get their figures but no finding.
    min_seconds: float = 1.0
    # Others contend only for CPUs that had no time to spare: with more idle than this, they
    # ran beside the run, not instead of it (one xdist worker per GPU feeding its own GPU).
    max_idle: float = 0.10


# Without PSI, memory is short when less than this share of it is available.
LOW_MEMORY = 0.05


def findings(
    start: HostSnapshot, end: HostSnapshot, limits: HostLimits
) -> tuple[list[ValidityWarning], HostFigures | None]:
    """The host findings of the span between ``start`` and ``end``, and its figures."""
    fig = compare(start, end)
    if fig is None or fig.seconds < limits.min_seconds:
        return [], fig
    out: list[ValidityWarning] = []
    pct = f"{fig.others_share * 100:.0f}%"
    if fig.others_share > limits.max_contention and fig.idle_share <= limits.max_idle:
        out.append(
            ValidityWarning(
                code="host_contention",
                message=f"{pct} of {fig.cpus} cores used by other processes "
                f"({fig.others_cores:.2f} core-equivalents over {fig.seconds:.1f}s; this run "
                f"{fig.own_cores:.2f}, idle {fig.idle_share * 100:.0f}%; limit "
                f"{limits.max_contention * 100:g}%)",
                figures={
                    "brief": f"{pct} of {fig.cpus} cores",
                    "others_share": round(fig.others_share, 4),
                    "others_cores": round(fig.others_cores, 3),
                    "own_cores": round(fig.own_cores, 3),
                    "cpus": fig.cpus,
                    "seconds": round(fig.seconds, 3),
                    "limit": limits.max_contention,
                },
            )
        )
    if fig.steal_share > limits.max_steal:
        steal = f"{fig.steal_share * 100:.0f}%"
        out.append(
            ValidityWarning(
                code="host_steal",
                message=f"the hypervisor took {steal} of {fig.cpus} cores' time (steal; limit "
                f"{limits.max_steal * 100:g}%): neighbours of this VM were busy",
                figures={"brief": steal, "steal_share": round(fig.steal_share, 4)},
            )
        )
    out.extend(_memory(fig, limits))
    return out, fig


def _memory(fig: HostFigures, limits: HostLimits) -> list[ValidityWarning]:
    if fig.memory_pressure is not None:
        if fig.memory_pressure <= limits.max_memory_pressure:
            return []
        share = f"{fig.memory_pressure * 100:.0f}%"
        message = f"tasks stalled on memory {share} of the window (PSI some; limit "
        message += f"{limits.max_memory_pressure * 100:g}%)"
        return [
            ValidityWarning(
                code="host_memory_pressure",
                message=message,
                figures={"brief": share, "memory_pressure": round(fig.memory_pressure, 4)},
            )
        ]
    if fig.mem_available is not None and fig.mem_available < LOW_MEMORY:
        share = f"{fig.mem_available * 100:.1f}%"
        return [
            ValidityWarning(
                code="host_memory_pressure",
                message=f"only {share} of memory available at the window's end (no PSI here)",
                figures={"brief": f"{share} free", "mem_available": round(fig.mem_available, 4)},
            )
        ]
    return []


def busiest_others(
    start: dict[int, ProcTimes], end: dict[int, ProcTimes], own: set[int], seconds: float
) -> list[tuple[ProcTimes, float]]:
    """Processes other than ``own`` by CPU used between two readings (cores), busiest first."""
    if seconds <= 0:
        return []
    found = []
    for pid, after in end.items():
        before = start.get(pid)
        if pid in own or before is None:
            continue
        used = (after.jiffies - before.jiffies) / (seconds * CLK_TCK)
        if used > 0:
            found.append((after, used))
    return sorted(found, key=lambda f: -f[1])
