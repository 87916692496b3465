"""Warmup until steady, on simulated GPUs and engines that advance an injected clock.

Nothing sleeps: the engine's batches and the cool-down gaps move a scripted clock, and the
simulated GPUs are functions of that clock (or a first-order thermal model driven by it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.engine import BatchResult, Completion, Request
from pytest_llem.measure.idle_power import Baseline
from pytest_llem.measure.stabilise import latency_cv, stabilise
from pytest_llem.measure.thermal import ThermalReader
from pytest_llem.measure.validity import assess
from pytest_llem.results.records import EnergyInfo, Metrics, ThermalRecord, WarmupRecord


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Engine:
    """Each batch takes ``latencies[i]`` (the last repeats) and yields ``outputs[i]`` tokens."""

    clock: Clock
    latencies: list[float] = field(default_factory=lambda: [0.5])
    outputs: list[int] = field(default_factory=lambda: [32])
    on_batch: Callable[[float], None] = lambda seconds: None
    calls: int = 0

    def generate(self, batch: list[Request], config: BuiltinConfig) -> BatchResult:
        latency = self.latencies[min(self.calls, len(self.latencies) - 1)]
        out = self.outputs[self.calls % len(self.outputs)]
        self.calls += 1
        self.on_batch(latency)
        self.clock.now += latency
        return BatchResult([Completion(8, out, latency) for _ in batch], latency)


class FirstOrderGpu:
    """Temperature relaxes towards the idle or the load equilibrium with time constant
    ``tau_s``; power under load follows temperature (leakage), as a real GPU's does."""

    def __init__(self, temp_c: float, tau_s: float = 15.0) -> None:
        self.temp_c, self.tau_s = temp_c, tau_s
        self.idle_c, self.load_c, self.load_w, self.leak_w_per_c = 35.0, 70.0, 300.0, 1.5

    def run(self, seconds: float, loaded: bool) -> None:
        target = self.load_c if loaded else self.idle_c
        self.temp_c = target + (self.temp_c - target) * math.exp(-seconds / self.tau_s)

    def read(self) -> list[tuple[str, float | None, float | None]]:
        power = self.load_w + self.leak_w_per_c * (self.temp_c - self.load_c)
        return [("GPU-0", float(int(self.temp_c)), power)]  # NVML: whole degrees


BATCHES = [[Request((1, 2, 3))] for _ in range(4)]


def cfg(**kw: object) -> BuiltinConfig:
    return BuiltinConfig.model_validate({"model": "m", "device": "cuda", "n": 4, **kw})


def quiet(phase: str, detail: str) -> None:
    pass


def run(
    engine: Engine, config: BuiltinConfig, read: ThermalReader | None
) -> tuple[WarmupRecord | None, ThermalRecord | None]:
    return stabilise(engine, BATCHES, config, read, engine.clock, quiet)


def codes(config: BuiltinConfig, warm: WarmupRecord | None, th: ThermalRecord | None) -> set[str]:
    figures = Metrics(
        output_tokens=1000,
        input_tokens=100,
        requests=100,
        duration_s=30.0,
        output_tokens_per_s=1.0,
        input_tokens_per_s=1.0,
    )
    warnings = assess(config, figures, EnergyInfo(), warm, th, None, Baseline())
    return {w.code for w in warnings}


def test_a_hot_steady_gpu_is_recognised_in_two_seconds() -> None:
    clock = Clock()
    warm, th = run(Engine(clock), cfg(), ThermalReader(lambda: [("GPU-0", 70.0, 300.0)], 0.5))
    # Readings after batches 1-4 (0.5 s each) span the 1.5 s steady run.
    assert th is not None and th.stabilised and th.method == "power_steady"
    assert th.waited_s == 2.0 and th.batches == 4
    assert warm is not None and warm.method == "power_steady" and warm.iterations == 4
    assert warm.converged is None  # latency is not judged when the devices are


def test_a_heating_gpu_never_starts_the_window_before_its_plateau() -> None:
    # Power rises linearly for 20 s, then stays flat; the temperature follows it.
    clock = Clock()

    def read() -> list[tuple[str, float | None, float | None]]:
        rise = min(clock.now, 20.0) / 20.0
        return [("GPU-0", float(int(45.0 + 25.0 * rise)), 200.0 + 100.0 * rise)]

    reasons: list[str] = []
    config = cfg(thermal={"max_s": 120})
    warm, th = stabilise(
        Engine(clock),
        BATCHES,
        config,
        ThermalReader(read, 0.5),
        clock,
        lambda p, d: reasons.append(d),
    )
    assert th is not None and th.stabilised and th.method == "power_steady"
    assert th.waited_s > 20.0  # only after the plateau
    assert th.waited_s <= 20.0 + config.thermal.window_s + 1.0  # and not much later
    assert any("power drifting" in r or "power spread" in r for r in reasons)
    assert codes(config, warm, th) == set()


def test_a_gpu_that_cooled_in_a_gap_is_stabilised_again() -> None:
    clock, gpu = Clock(), FirstOrderGpu(temp_c=70.0)
    engine = Engine(clock, on_batch=lambda s: gpu.run(s, loaded=True))
    reader = ThermalReader(gpu.read, 0.5)
    config = cfg(thermal={"max_s": 120})
    _, hot = run(engine, config, reader)
    assert hot is not None and hot.waited_s == 2.0  # left hot and steady: recognised at once
    gpu.run(60.0, loaded=False)  # a cycle gap: the GPU cools towards idle
    cooled_to = gpu.temp_c
    _, again = run(engine, config, reader)
    assert cooled_to < 40.0
    assert again is not None and again.stabilised and again.waited_s > 10.0
    # It ended close to the load equilibrium, where the temperature no longer moves.
    assert gpu.load_c - gpu.temp_c < 3.0


def test_a_gpu_that_never_settles_is_measured_at_max_s_with_a_warning() -> None:
    clock = Clock()
    reader = ThermalReader(lambda: [("GPU-0", 40.0 + clock.now, 300.0)], 0.5)
    config = cfg(thermal={"max_s": 10})
    warm, th = run(Engine(clock), config, reader)
    assert th is not None and not th.stabilised and th.method == "max_wait_reached"
    assert th.waited_s == 10.0 and "temperature moving" in th.reason
    assert warm is not None and warm.method == "max_wait_reached"
    assert "thermal_not_stable" in codes(config, warm, th)


def test_n_warmup_and_min_s_are_floors() -> None:
    clock = Clock()
    steady = ThermalReader(lambda: [("GPU-0", 70.0, 300.0)], 0.5)
    warm, th = run(Engine(clock), cfg(warmup={"n_warmup": 8}), steady)
    assert warm is not None and warm.iterations == 8 and th is not None and th.waited_s == 4.0
    warm, th = run(Engine(Clock()), cfg(thermal={"min_s": 6}), steady)
    assert th is not None and th.waited_s == 6.0 and th.method == "power_steady"


def test_the_reader_is_read_at_most_once_per_interval() -> None:
    clock, reads = Clock(), []

    def read() -> list[tuple[str, float | None, float | None]]:
        reads.append(clock.now)
        return [("GPU-0", 70.0, 300.0)]

    run(Engine(clock, latencies=[0.1]), cfg(warmup={"n_warmup": 1}), ThermalReader(read, 0.5))
    assert reads == pytest.approx([0.1, 0.6, 1.1, 1.6])


def test_on_cpu_throughput_steady_compares_like_batches() -> None:
    # One-off costs in the first batch, then steady; answers alternate between one token
    # (a short batch) and 32 tokens (a long one), so only like batches are compared.
    clock = Clock()
    engine = Engine(clock, latencies=[9.0, 0.05, 1.0, 0.05, 1.0, 0.05, 1.0], outputs=[32, 1])
    config = cfg(device="cpu", warmup={"n_warmup": 1})
    warm, th = run(engine, config, None)
    assert th is None
    assert warm is not None and warm.method == "throughput_steady" and warm.converged is True
    assert warm.iterations == 6 and warm.final_cv == 0.0  # 3 like short batches: 0.05 s each
    assert warm.duration_s == pytest.approx(11.15)


def test_latency_cv_needs_window_like_batches() -> None:
    lat = [((1, 32), 9.0), ((1, 1), 0.05), ((1, 32), 1.0), ((1, 1), 0.05), ((1, 32), 1.0)]
    assert latency_cv(lat[:4], 3) is None  # two short batches so far
    assert latency_cv(lat, 3) == pytest.approx(1.26, abs=0.01)  # 9.0, 1.0, 1.0
    assert latency_cv(lat, 2) == 0.0


def test_on_cpu_unsteady_throughput_stops_at_a_bound_and_warns() -> None:
    engine = Engine(Clock(), latencies=[1.0, 2.0] * 30)
    config = cfg(device="cpu", warmup={"max_iterations": 12})
    warm, th = run(engine, config, None)
    assert warm is not None and warm.method == "max_iterations_reached" and warm.iterations == 12
    assert warm.converged is False and codes(config, warm, th) == {"warmup_not_converged"}
    # max_s bounds the time: after 6.5 s, a batch as long as the shorter of the last two
    # (1.5 s) would end past 7 s. A slow first batch alone does not end warmup.
    engine = Engine(Clock(), latencies=[5.0, 1.5])
    warm, _ = run(engine, cfg(device="cpu", warmup={"n_warmup": 1}, thermal={"max_s": 7}), None)
    assert warm is not None and warm.method == "max_wait_reached" and warm.duration_s == 6.5
    engine = Engine(Clock(), latencies=[40.0, 1.0, 2.0] * 30)
    warm, _ = run(engine, cfg(device="cpu"), None)
    assert warm is not None and warm.iterations > 2


def test_devices_that_report_nothing_fall_back_to_throughput_and_say_so() -> None:
    clock = Clock()
    reader = ThermalReader(lambda: [("GPU-0", None, None)], 0.5)
    config = cfg()
    warm, th = run(Engine(clock), config, reader)
    assert warm is not None and warm.method == "throughput_steady" and warm.iterations == 3
    assert th is not None and not th.stabilised and th.method == "not_judged"
    assert "thermal_not_stable" in codes(config, warm, th)


def test_thermal_disabled_is_the_fixed_count_or_latency_cv_of_before() -> None:
    steady = ThermalReader(lambda: [("GPU-0", 70.0, 300.0)], 0.5)
    warm, th = run(Engine(Clock()), cfg(thermal={"enabled": False}), steady)
    assert warm is not None and warm.method == "fixed_count" and warm.iterations == 3
    assert th is not None and th.method == "disabled" and th.stabilised and th.waited_s == 0.0
    config = cfg(thermal={"enabled": False}, warmup={"convergence_detection": True})
    warm, _ = run(Engine(Clock(), latencies=[3.0, 2.0, 1.0]), config, None)
    assert warm is not None and warm.method == "latency_cv" and warm.iterations == 5


def test_warmup_disabled_runs_nothing_and_cannot_judge_the_devices() -> None:
    engine = Engine(Clock())
    config = cfg(warmup={"enabled": False})
    warm, th = run(engine, config, ThermalReader(lambda: [("GPU-0", 70.0, 300.0)], 0.5))
    assert engine.calls == 0 and warm is None
    assert th is not None and th.method == "not_judged" and not th.stabilised
    assert "thermal_not_stable" in codes(config, warm, th)
    assert run(engine, cfg(device="cpu", warmup={"enabled": False}), None) == (None, None)
