"""The protocol's control flow, driven by a scripted engine and a scripted clock.

The engine here implements pytest-llem's own Engine interface (no vendor API is faked);
real engines are exercised in tests/unit/engines and tests/plugin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_llem.energy.meter import EnergyReading, MeterInfo
from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.engine import BatchResult, Completion, MemoryInfo, Request
from pytest_llem.engines.pytorch.spec import section as pytorch_section
from pytest_llem.measure.idle_power import IdleReading
from pytest_llem.measure.protocol import Instruments, run
from pytest_llem.measure.thermal import ThermalReader


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class ScriptedEngine:
    clock: Clock
    batch_latencies: list[float]
    calls: int = 0
    events: list[str] = field(default_factory=list)

    def requests(self, config: BuiltinConfig) -> list[Request]:
        return [Request((1, 2, 3)) for _ in range(config.n)]

    def batches(self, requests: list[Request], config: BuiltinConfig) -> list[list[Request]]:
        size = pytorch_section(config).batch_size
        return [requests[i : i + size] for i in range(0, len(requests), size)]

    def generate(self, batch: list[Request], config: BuiltinConfig) -> BatchResult:
        latency = self.batch_latencies[min(self.calls, len(self.batch_latencies) - 1)]
        self.calls += 1
        self.clock.now += latency
        self.events.append("generate")
        return BatchResult([Completion(3, 5, latency) for _ in batch], latency)

    def memory(self) -> MemoryInfo:
        self.events.append("memory")
        return MemoryInfo(peak_mb=10.0, model_mb=5.0)

    def close(self) -> None:
        pass


class CountingMeter:
    def __init__(self, clock: Clock, watts: float) -> None:
        self.info = MeterInfo(source="test", method="counter", resolution_j=0.001)
        self.clock = clock
        self.watts = watts
        self.t0 = 0.0

    def start(self) -> None:
        self.t0 = self.clock()

    def stop(self) -> EnergyReading:
        duration = self.clock() - self.t0
        energy = self.watts * duration
        return EnergyReading(total_j=energy, per_device_j={"gpu0": energy}, duration_s=duration)

    def close(self) -> None:
        pass


def config(**kw: object) -> BuiltinConfig:
    return BuiltinConfig.model_validate({"model": "m", "device": "cpu", "n": 4, **kw})


def test_window_repeats_passes_until_min_duration() -> None:
    clock = Clock()
    engine = ScriptedEngine(clock, [0.5])
    cfg = config(pytorch={"batch_size": 2}, warmup={"n_warmup": 2}, window={"min_duration_s": 2.5})
    m = run(engine, cfg, Instruments(meter=CountingMeter(clock, 100.0), clock=clock))
    # warmup until throughput is steady (CPU: 3 like batches, at least n_warmup); each pass
    # is 2 batches x 0.5 s; 3 passes reach 3.0 s >= 2.5 s
    assert m.warmup is not None and m.warmup.iterations == 3
    assert m.warmup.method == "throughput_steady" and m.thermal is None
    assert m.metrics.passes == 3 and m.metrics.requests == 12
    assert m.metrics.duration_s == 3.0
    assert m.metrics.output_tokens == 60 and m.metrics.input_tokens == 36
    assert m.metrics.output_tokens_per_s == 20.0 and m.metrics.input_tokens_per_s == 12.0
    assert m.metrics.energy_j == 300.0
    assert m.metrics.energy_per_output_token_j == 5.0
    assert m.metrics.avg_power_w == 100.0
    assert m.metrics.energy_adjusted_j is None  # no baseline handed in


def test_adjusted_energy_subtracts_idle_and_floors_at_zero() -> None:
    clock = Clock()
    cfg = config(window={"min_duration_s": 0})
    idle = IdleReading({"gpu0": 20.0}, measured_at=1000.0, method="counter")

    def inst(watts: float) -> Instruments:
        return Instruments(
            meter=CountingMeter(clock, watts), clock=clock, idle=idle, wall_clock=lambda: 1060.0
        )

    busy = run(ScriptedEngine(clock, [1.0]), cfg, inst(50.0))
    assert busy.metrics.energy_adjusted_j == 4 * (50.0 - 20.0)
    assert busy.energy.baseline_w == 20.0 and busy.energy.baseline_age_s == 60.0
    assert "baseline_missing" not in [w.code for w in busy.warnings]
    quiet = run(ScriptedEngine(clock, [1.0]), cfg, inst(10.0))
    assert quiet.metrics.energy_adjusted_j == 0.0


def test_baseline_of_other_devices_is_not_used() -> None:
    clock = Clock()
    idle = IdleReading({"other-gpu": 20.0}, measured_at=0.0)
    m = run(
        ScriptedEngine(clock, [1.0]),
        config(window={"min_duration_s": 0}),
        Instruments(
            meter=CountingMeter(clock, 50.0), clock=clock, idle=idle, wall_clock=lambda: 1.0
        ),
    )
    assert m.metrics.energy_adjusted_j is None
    assert "baseline_missing" in [w.code for w in m.warnings]


def test_stale_baseline_warns() -> None:
    clock = Clock()
    idle = IdleReading({"gpu0": 20.0}, measured_at=0.0)
    m = run(
        ScriptedEngine(clock, [1.0]),
        config(window={"min_duration_s": 0}, baseline={"max_age_s": 10}),
        Instruments(
            meter=CountingMeter(clock, 50.0), clock=clock, idle=idle, wall_clock=lambda: 100.0
        ),
    )
    assert "baseline_stale" in [w.code for w in m.warnings]


def test_warmup_convergence_stops_when_latency_settles() -> None:
    clock = Clock()
    engine = ScriptedEngine(clock, [3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    cfg = config(
        warmup={
            "convergence_detection": True,
            "n_warmup": 1,
            "window_size": 3,
            "cv_threshold": 0.01,
            "max_iterations": 10,
        },
        window={"min_duration_s": 0},
    )
    m = run(engine, cfg, Instruments(meter=CountingMeter(clock, 1.0), clock=clock))
    assert m.warmup is not None
    assert m.warmup.converged is True and m.warmup.iterations == 5 and m.warmup.final_cv == 0.0


def test_warmup_that_never_converges_is_a_validity_warning() -> None:
    clock = Clock()
    engine = ScriptedEngine(clock, [1.0, 2.0] * 20)
    cfg = config(
        warmup={"convergence_detection": True, "window_size": 3, "max_iterations": 6},
        window={"min_duration_s": 0},
    )
    m = run(engine, cfg, Instruments(meter=CountingMeter(clock, 1.0), clock=clock))
    assert m.warmup is not None and m.warmup.converged is False and m.warmup.iterations == 6
    assert "warmup_not_converged" in [w.code for w in m.warnings]


def test_short_window_and_few_samples_warn() -> None:
    clock = Clock()
    m = run(
        ScriptedEngine(clock, [0.1]),
        config(window={"min_duration_s": 0}),
        Instruments(meter=CountingMeter(clock, 1.0), clock=clock),
    )
    assert {"short_window", "few_samples", "baseline_missing"} <= {w.code for w in m.warnings}


def test_peak_memory_is_reset_before_the_window() -> None:
    clock = Clock()
    engine = ScriptedEngine(clock, [0.1])
    run(
        engine,
        config(warmup={"n_warmup": 1}, window={"min_duration_s": 0}),
        Instruments(meter=CountingMeter(clock, 1.0), clock=clock),
    )
    warmup = engine.events.index("memory")
    assert warmup >= 1 and set(engine.events[:warmup]) == {"generate"}
    assert engine.events[warmup + 1] == "generate"  # the memory reset precedes the window
    assert engine.events[-1] == "memory"


def test_a_gpu_is_judged_steady_under_load_and_the_result_says_how() -> None:
    clock = Clock()
    reads: list[float] = []

    def read() -> list[tuple[str, float | None, float | None]]:
        reads.append(clock.now)
        return [("gpu0", 65.0, 250.0)]

    engine = ScriptedEngine(clock, [0.5])
    cfg = config(device="cuda", window={"min_duration_s": 1.0})
    inst = Instruments(
        meter=CountingMeter(clock, 250.0), thermal=ThermalReader(read, 0.5), clock=clock
    )
    m = run(engine, cfg, inst)
    assert m.thermal is not None and m.thermal.stabilised and m.thermal.method == "power_steady"
    assert m.thermal.waited_s == 2.0 and m.thermal.batches == 4
    assert m.warmup is not None and m.warmup.iterations == 4 and m.warmup.duration_s == 2.0
    assert reads == [0.5, 1.0, 1.5, 2.0]  # between warmup batches, none in the window
    assert "thermal_not_stable" not in {w.code for w in m.warnings}
