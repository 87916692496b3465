"""A disturbed window through the protocol: the policy (warn, retry with backoff, fail), with
scripted host readings, a scripted engine and an injected sleep (no real waiting)."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_llem.energy import disturbance
from pytest_llem.energy.disturbance import WindowWatch
from pytest_llem.energy.host_load import CpuTimes, HostSnapshot
from pytest_llem.measure.protocol import Instruments, run
from pytest_llem.results.records import ValidityWarning
from pytest_llem.study.measurement import ValidityConfig
from tests.unit.measure.test_protocol import Clock, CountingMeter, ScriptedEngine, config


class ScriptedHost:
    """Snapshots whose others' share in each window follows ``shares`` (2 saturated cores,
    100 Hz); the protocol's clock supplies the times."""

    def __init__(self, clock: Clock, shares: list[float]) -> None:
        self.clock = clock
        self.shares = shares
        self.windows = 0
        self.busy = 0
        self.own = 0
        self.last = 0.0

    def snapshot(self) -> HostSnapshot:
        now = self.clock()
        ticks = round((now - self.last) * 200)
        if self.windows % 2 == 1:  # closing a window: others took their share of it
            share = self.shares[min(self.windows // 2, len(self.shares) - 1)]
            self.own += round(ticks * (1 - share))
        else:
            self.own += ticks  # between windows: all ours
        self.busy += ticks
        self.last = now
        self.windows += 1
        return HostSnapshot(now, 2, CpuTimes(self.busy, 0, 0), self.own, frozenset({1}))


def instruments(clock: Clock, cfg: Any, shares: list[float], slept: list[float]) -> Instruments:
    watch = WindowWatch(cfg.validity, host=ScriptedHost(clock, shares))  # type: ignore[arg-type]
    return Instruments(
        meter=CountingMeter(clock, 100.0), clock=clock, watch=watch, sleep=slept.append
    )


def disturbed_config(**validity: Any) -> Any:
    return config(
        warmup={"n_warmup": 1},
        thermal={"enabled": False},
        window={"min_duration_s": 2.0},
        validity={"min_window_s": 0, "min_samples": 0, **validity},
        baseline={"enabled": False},
    )


def test_retry_discards_disturbed_windows_with_a_doubling_backoff() -> None:
    clock, slept = Clock(), []
    cfg = disturbed_config(retry_backoff_s=10.0, max_retries=2)
    inst = instruments(clock, cfg, [0.6, 0.5, 0.02], slept)
    got = run(ScriptedEngine(clock, [0.5]), cfg, inst)
    assert slept == [10.0, 20.0]
    codes = [w.code for w in got.warnings]
    assert "host_contention" not in codes and "window_retried" in codes
    [note] = [w for w in got.warnings if w.code == "window_retried"]
    assert note.figures["discarded"] == 2
    assert "window 1: host_contention 60% of 2 cores" in note.message
    windows = got.environment["windows"]
    assert [w["flags"] for w in windows] == [
        ["host_contention 60% of 2 cores"],
        ["host_contention 50% of 2 cores"],
        [],
    ]
    assert windows[2]["host"]["others_share"] == pytest.approx(0.02, abs=0.01)
    assert not disturbance.must_fail(got.warnings, cfg.validity)


def test_retries_spent_the_last_window_comes_back_flagged() -> None:
    clock, slept = Clock(), []
    cfg = disturbed_config(retry_backoff_s=0.0, max_retries=1)
    inst = instruments(clock, cfg, [0.6], slept)
    got = run(ScriptedEngine(clock, [0.5]), cfg, inst)
    assert slept == [0.0]
    assert [w.code for w in got.warnings].count("host_contention") == 1
    assert disturbance.must_fail(got.warnings, cfg.validity)
    message, fix = disturbance.failure(got.warnings, cfg.validity)
    assert message.startswith("disturbed machine in each of 2 windows: host_contention: 60% of 2")
    assert "stop the other work" in fix and "on_disturbed: warn" in fix


@pytest.mark.parametrize("policy", ["fail", "warn"])
def test_fail_and_warn_measure_once(policy: str) -> None:
    clock, slept = Clock(), []
    cfg = disturbed_config(on_disturbed=policy)
    inst = instruments(clock, cfg, [0.6], slept)
    got = run(ScriptedEngine(clock, [0.5]), cfg, inst)
    assert slept == [] and len(got.environment["windows"]) == 1
    assert "host_contention" in [w.code for w in got.warnings]
    assert disturbance.must_fail(got.warnings, cfg.validity) is (policy == "fail")


def test_a_quiet_window_is_kept_at_once() -> None:
    clock, slept = Clock(), []
    cfg = disturbed_config()
    inst = instruments(clock, cfg, [0.03], slept)
    got = run(ScriptedEngine(clock, [0.5]), cfg, inst)
    assert slept == [] and got.warnings == [] and len(got.environment["windows"]) == 1


def flag(code: str) -> ValidityWarning:
    return ValidityWarning(code=code, message="m", figures={"brief": "x"})


def test_decide_is_the_policy() -> None:
    retry = ValidityConfig(retry_backoff_s=5.0, max_retries=3)
    disturbed = [flag("host_contention"), flag("power_capped")]
    first = disturbance.decide(disturbed, retry, 0)
    assert (first.action, first.wait_s, [w.code for w in first.flags]) == (
        "retry",
        5.0,
        ["host_contention"],
    )
    assert disturbance.decide(disturbed, retry, 2).wait_s == 20.0
    assert disturbance.decide(disturbed, retry, 3).action == "fail"
    assert disturbance.decide([flag("power_capped")], retry, 0).action == "accept"
    assert disturbance.decide(disturbed, ValidityConfig(on_disturbed="fail"), 0).action == "fail"
    assert disturbance.decide(disturbed, ValidityConfig(on_disturbed="warn"), 0).action == "accept"
    # A study may count power capping as a disturbance, or not count contention.
    own = ValidityConfig(disturbed_by=("power_capped",))
    assert [w.code for w in disturbance.decide(disturbed, own, 0).flags] == ["power_capped"]


def test_the_codes_of_older_studies_still_work() -> None:
    assert ValidityConfig(fail_on=("throttling", "other_processes")).fail_on == (
        "clocks_event",
        "power_capped",
        "gpu_foreign_process",
    )
    with pytest.raises(ValueError, match="unknown warning codes"):
        ValidityConfig(disturbed_by=("host_contentoin",))
