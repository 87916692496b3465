"""Host readings: /proc parsers on recorded text, others' share arithmetic, thresholds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_llem.energy import host_load
from pytest_llem.energy.host_load import (
    CpuTimes,
    HostLimits,
    HostReader,
    HostSnapshot,
    compare,
    findings,
    parse_mem_available,
    parse_pid_stat,
    parse_proc_stat,
    parse_psi_some_total,
)

# Recorded on a 2-core VM (fields: user nice system idle iowait irq softirq steal guest gn).
PROC_STAT = """\
cpu  187809 84 23633 68836 733 0 487 290 0 0
cpu0 87837 44 11196 41202 273 0 91 142 0 0
cpu1 99972 40 12437 27634 459 0 396 148 0 0
intr 2045579 0 0 0
ctxt 2982848
"""
# A process whose name holds spaces and parentheses, then a plain one (utime stime cutime
# cstime are fields 14-17 of stat(5)).
PID_STAT_ODD = (
    "4242 (python (x) y) S 1 4242 22944 0 -1 4194304 100 0 0 0 300 50 7 3 20 0 1 0 254140 "
    "3133440 411 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
)
PSI = "some avg10=1.50 avg60=0.20 avg300=0.00 total=123456\nfull avg10=0.00 total=100\n"
MEMINFO = "MemTotal:       24683784 kB\nMemFree:        22160292 kB\nMemAvailable:   1234189 kB\n"


def test_proc_stat_sums_the_chosen_cpus() -> None:
    times, count = parse_proc_stat(PROC_STAT)
    assert count == 2
    assert times.busy == (87837 + 44 + 11196 + 91) + (99972 + 40 + 12437 + 396)
    assert times.idle == 41202 + 273 + 27634 + 459
    assert times.steal == 142 + 148
    only1, count1 = parse_proc_stat(PROC_STAT, {1})
    assert count1 == 1 and only1 == CpuTimes(99972 + 40 + 12437 + 396, 27634 + 459, 148)


def test_pid_stat_survives_odd_command_names() -> None:
    parsed = parse_pid_stat(4242, PID_STAT_ODD)
    assert parsed is not None
    assert (parsed.comm, parsed.ppid, parsed.jiffies) == ("python (x) y", 1, 300 + 50 + 7 + 3)
    assert parse_pid_stat(1, "garbage") is None
    assert parse_pid_stat(1, "1 (x) S 0 1") is None  # too short


def test_psi_and_meminfo() -> None:
    assert parse_psi_some_total(PSI) == 123456
    assert parse_psi_some_total("full total=3\n") is None
    assert parse_mem_available(MEMINFO) == pytest.approx(1234189 / 24683784)
    assert parse_mem_available("MemTotal: 10 kB\n") is None


def snap(
    t: float,
    busy: int,
    idle: int,
    own: int,
    steal: int = 0,
    psi: int | None = None,
    cpus: int = 2,
    mem: float | None = 0.5,
) -> HostSnapshot:
    return HostSnapshot(
        t=t,
        cpus=cpus,
        times=CpuTimes(busy, idle, steal),
        own_jiffies=own,
        own_pids=frozenset({1}),
        psi_some_us=psi,
        mem_available=mem,
    )


def test_others_share_is_busy_minus_ours_over_all_ticks() -> None:
    # 5 s on 2 cores at 100 Hz = 1000 ticks: 900 busy, 350 of them ours, 100 idle.
    fig = compare(snap(0.0, 0, 0, 0), snap(5.0, 900, 100, 350))
    assert fig is not None
    assert fig.others_share == pytest.approx(0.55)
    assert fig.others_cores == pytest.approx(1.10)
    assert fig.own_cores == pytest.approx(0.70)
    assert fig.idle_share == pytest.approx(0.10)
    # Our tree counted more than the CPUs' busy ticks (accounting granularity): never negative.
    fig = compare(snap(0.0, 0, 0, 0), snap(5.0, 500, 500, 520))
    assert fig is not None and fig.others_share == 0.0
    assert compare(snap(0.0, 5, 5, 0), snap(1.0, 5, 5, 0)) is None  # no tick: no figures


def test_two_busy_loops_beside_the_run_are_contention() -> None:
    found, fig = findings(snap(0.0, 0, 0, 0), snap(5.0, 1000, 0, 450), HostLimits())
    assert fig is not None
    [warning] = found
    assert warning.code == "host_contention"
    assert warning.message.startswith("55% of 2 cores used by other processes")
    assert warning.figures["others_share"] == pytest.approx(0.55)
    assert warning.figures["cpus"] == 2 and warning.label() == "host_contention 55% of 2 cores"


def test_ordinary_noise_is_not_contention() -> None:
    # Measured here on a quiet run of the default CPU study: others took 0-11% of 2 cores.
    found, _ = findings(snap(0.0, 0, 0, 0), snap(5.0, 990, 10, 880), HostLimits())
    assert found == []


def test_others_beside_the_run_with_cpus_to_spare_are_not_contention() -> None:
    # 16 cores, this run 1 core, siblings (say one xdist worker per GPU) 7 cores: half idle.
    found, fig = findings(
        snap(0.0, 0, 0, 0, cpus=16), snap(5.0, 4000, 4000, 500, cpus=16), HostLimits()
    )
    assert fig is not None and fig.others_share == pytest.approx(0.4375)
    assert found == []
    # The same others on saturated CPUs do contend.
    found, _ = findings(
        snap(0.0, 0, 0, 0, cpus=16), snap(5.0, 7800, 200, 500, cpus=16), HostLimits()
    )
    assert [w.code for w in found] == ["host_contention"]


def test_windows_under_a_second_get_figures_but_no_finding() -> None:
    found, fig = findings(snap(0.0, 0, 0, 0), snap(0.5, 100, 0, 0), HostLimits())
    assert fig is not None and fig.others_share == 1.0 and found == []


def test_steal_and_memory_pressure() -> None:
    start = snap(0.0, 0, 0, 0, psi=0)
    found, _ = findings(start, snap(5.0, 700, 100, 700, steal=200, psi=1_500_000), HostLimits())
    assert [w.code for w in found] == ["host_steal", "host_memory_pressure"]
    assert found[0].figures["steal_share"] == pytest.approx(0.2)
    assert found[1].figures["memory_pressure"] == pytest.approx(0.3)
    # Without PSI, memory almost exhausted at the window's end counts instead.
    found, _ = findings(snap(0.0, 0, 0, 0), snap(5.0, 1000, 0, 1000, mem=0.01), HostLimits())
    assert [w.code for w in found] == ["host_memory_pressure"]
    assert "1.0% of memory available" in found[0].message


def write_proc(root: Path, stat: str, pids: dict[int, str], psi: str | None = PSI) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "stat").write_text(stat)
    (root / "meminfo").write_text(MEMINFO)
    if psi is not None:
        (root / "pressure").mkdir(exist_ok=True)
        (root / "pressure" / "memory").write_text(psi)
    for pid, text in pids.items():
        (root / str(pid)).mkdir(exist_ok=True)
        (root / str(pid) / "stat").write_text(text)
    (root / "self").mkdir(exist_ok=True)  # not a pid: skipped


def pid_line(pid: int, ppid: int, utime: int, cutime: int = 0, comm: str = "python") -> str:
    return f"{pid} ({comm}) S {ppid} 1 1 0 -1 0 0 0 0 0 {utime} 0 {cutime} 0 20 0 1 0 1 1 1"


def test_reader_sums_the_tree_and_its_reaped_children(tmp_path: Path) -> None:
    proc, sys_root = tmp_path / "proc", tmp_path / "sys"
    freq = sys_root / "devices/system/cpu/cpu0/cpufreq"
    freq.mkdir(parents=True)
    (freq / "scaling_cur_freq").write_text("2400000\n")
    (freq / "cpuinfo_max_freq").write_text("3000000\n")
    (freq / "scaling_governor").write_text("powersave\n")
    # 10 is the run; 11 its worker; 12 the worker's child; 20 someone else.
    pids = {
        10: pid_line(10, 1, 100),
        11: pid_line(11, 10, 50),
        12: pid_line(12, 11, 5),
        20: pid_line(20, 1, 999),
    }
    write_proc(proc, PROC_STAT, pids)
    reader = HostReader(proc, sys_root, root=10, clock=lambda: 3.0)
    first = reader.snapshot()
    assert first.own_pids == {10, 11, 12} and first.own_jiffies == 155
    assert first.cpus == 2 and first.psi_some_us == 123456
    assert (first.mhz, first.max_mhz, first.governor) == (2400.0, 3000.0, "powersave")
    # The worker's child exits and is reaped: its time moves into the worker's cutime.
    pids[11] = pid_line(11, 10, 60, cutime=8)
    del pids[12]
    (proc / "12" / "stat").unlink()
    write_proc(proc, PROC_STAT, pids)
    second = reader.snapshot()
    assert second.own_jiffies - first.own_jiffies == 10 + 8 - 5


def test_a_snapshot_of_this_machine() -> None:
    got = HostReader().snapshot()
    assert os.getpid() in got.own_pids and got.cpus >= 1 and got.times.total > 0
    assert got.own_jiffies > 0  # this test process has run


def test_busiest_others_names_them(tmp_path: Path) -> None:
    start = {p: host_load.ProcTimes(p, 1, "x", 0) for p in (10, 20, 30)}
    end = {
        10: host_load.ProcTimes(10, 1, "ours", 500),
        20: host_load.ProcTimes(20, 1, "burner", 100),
        30: host_load.ProcTimes(30, 1, "idle", 0),
        40: host_load.ProcTimes(40, 1, "new", 50),  # started meanwhile: no start reading
    }
    found = host_load.busiest_others(start, end, {10}, seconds=1.0)
    assert [(p.comm, round(c, 2)) for p, c in found] == [("burner", 100 / host_load.CLK_TCK)]


class QuietReader(HostReader):
    """Real readings in which every busy tick is this run's: a quiet machine, for tests whose
    windows are long enough to be judged where a quiet machine cannot be promised."""

    def snapshot(self) -> HostSnapshot:
        got = super().snapshot()
        return HostSnapshot(**{**got.__dict__, "own_jiffies": got.times.busy})


def test_the_quiet_reader_reads_quiet() -> None:
    reader = QuietReader()
    found, fig = findings(reader.snapshot(), reader.snapshot(), HostLimits(min_seconds=0.0))
    assert found == [] and (fig is None or fig.others_share == 0.0)
