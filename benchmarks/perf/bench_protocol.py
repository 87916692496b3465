"""Protocol overhead: seconds an item spends outside its measured window, with defaults.

Drives the real protocol (measure.protocol.run: warmup until steady, judged by
measure.thermal on the readings of a thermal.ThermalReader; the idle baseline provider;
the cool-down between cycles) with a simulated clock, a simulated GPU and an engine whose
batches take a fixed time, so the figures are the protocol's own, not this machine's.
Three GPUs, in one run:

- stable: 55 C and 300 W throughout (the figures the targets are about);
- heating: under load its power rises 200 -> 300 W and its temperature 45 -> 70 C over
  20 s, then both stay flat: the window must wait for the plateau;
- cooling in a cycle gap: a first-order thermal model (temperature relaxes towards 35 C
  idle or 70 C under load, time constant 15 s; power follows temperature by leakage), with a
  cycle gap after every two items: the item after a gap must be stabilised again.

LLenergyMeasure's seed protocol spent 90+ s per experiment outside the window: a 30 s idle
baseline per experiment and a fixed 60 s thermal floor, plus warmup.

Run: python benchmarks/perf/bench_protocol.py [--batch-s 0.5] [--items 10]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Protocol

from pytest_llem.energy.meter import EnergyReading, MeterInfo
from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.engine import BatchResult, Completion, MemoryInfo, Request
from pytest_llem.engines.pytorch.spec import section as pytorch_section
from pytest_llem.measure.cooldown import cool_down, gap_before
from pytest_llem.measure.idle_power import IdleBaselines
from pytest_llem.measure.phases import quiet
from pytest_llem.measure.protocol import Instruments, run
from pytest_llem.measure.thermal import ThermalReader
from pytest_llem.results.records import Measurement, SamplerSummary

DeviceRow = tuple[str, float | None, float | None]


class Gpu(Protocol):
    def advance(self, seconds: float, loaded: bool) -> None: ...

    def state(self) -> tuple[float, float]:
        """(temperature C, power W) now, exactly."""


def read(gpu: Gpu) -> list[DeviceRow]:
    """What NVML would report: whole degrees."""
    temp_c, power_w = gpu.state()
    return [("GPU-sim", float(int(temp_c)), power_w)]


class StableGpu:
    def advance(self, seconds: float, loaded: bool) -> None:
        pass

    def state(self) -> tuple[float, float]:
        return 55.0, 300.0


class HeatingGpu:
    """Power and temperature rise linearly over the first ``ramp_s`` under load, then flat."""

    def __init__(self, ramp_s: float = 20.0) -> None:
        self.ramp_s, self.loaded_s = ramp_s, 0.0

    def advance(self, seconds: float, loaded: bool) -> None:
        self.loaded_s += seconds if loaded else 0.0

    def state(self) -> tuple[float, float]:
        rise = min(self.loaded_s / self.ramp_s, 1.0)
        return 45.0 + 25.0 * rise, 200.0 + 100.0 * rise


class FirstOrderGpu:
    """Temperature relaxes towards the idle or load equilibrium; power follows it (leakage)."""

    def __init__(self, tau_s: float = 15.0) -> None:
        self.tau_s, self.temp_c = tau_s, 35.0

    def advance(self, seconds: float, loaded: bool) -> None:
        target = 70.0 if loaded else 35.0
        self.temp_c = target + (self.temp_c - target) * math.exp(-seconds / self.tau_s)

    def state(self) -> tuple[float, float]:
        # 1.5 W per degree below the load equilibrium.
        return self.temp_c, 300.0 + 1.5 * (self.temp_c - 70.0)


class SimClock:
    """Simulated time: generating and sleeping advance it (and the GPU), nothing waits."""

    def __init__(self, gpu: Gpu) -> None:
        self.now, self.gpu = 0.0, gpu

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.gpu.advance(seconds, loaded=False)
        self.now += seconds

    def busy(self, seconds: float) -> None:
        self.gpu.advance(seconds, loaded=True)
        self.now += seconds


class SimEngine:
    def __init__(self, clock: SimClock, batch_s: float) -> None:
        self.clock, self.batch_s = clock, batch_s

    def requests(self, config: BuiltinConfig) -> list[Request]:
        return [Request((1,) * 64) for _ in range(config.n)]

    def batches(self, requests: list[Request], config: BuiltinConfig) -> list[list[Request]]:
        size = pytorch_section(config).batch_size
        return [requests[i : i + size] for i in range(0, len(requests), size)]

    def generate(self, batch: list[Request], config: BuiltinConfig) -> BatchResult:
        self.clock.busy(self.batch_s)
        return BatchResult([Completion(64, 128, self.batch_s) for _ in batch], self.batch_s)

    def memory(self) -> MemoryInfo:
        return MemoryInfo(None, None)

    def devices(self) -> list[object]:
        return []

    def close(self) -> None:
        pass


class SimMeter:
    """The energy counter's view of a GPU drawing a fixed power."""

    def __init__(self, clock: SimClock, watts: float) -> None:
        self.info = MeterInfo("nvml", "counter", 0.001)
        self.clock, self.watts, self.t0 = clock, watts, 0.0

    def start(self) -> None:
        self.t0 = self.clock()

    def stop(self) -> EnergyReading:
        d = self.clock() - self.t0
        return EnergyReading(self.watts * d, {"GPU-sim": self.watts * d}, d)

    def close(self) -> None:
        pass


class SimSampler:
    """The window's power/thermal sampler: the GPU's exact state at both edges."""

    def __init__(self, gpu: Gpu) -> None:
        self.gpu, self.edges = gpu, [gpu.state()]

    def start(self) -> None:
        self.edges = [self.gpu.state()]

    def stop(self) -> SamplerSummary:
        self.edges.append(self.gpu.state())
        temps, powers = [t for t, _ in self.edges], [p for _, p in self.edges]

        def stats(values: list[float]) -> dict[str, float]:
            return {"min": min(values), "mean": sum(values) / len(values), "max": max(values)}

        return SamplerSummary(
            samples=2, interval_s=0.0, temperature_c=stats(temps), power_w=stats(powers)
        )


def run_items(
    gpu: Gpu, items: int, batch_s: float, cycle_gap_s: float = 0.0, per_cycle: int = 2
) -> list[tuple[float, float, Measurement]]:
    """(gap before, seconds outside the window, measurement) of each item in turn."""
    clock = SimClock(gpu)
    config = BuiltinConfig(model="m", device="cuda", n=32, pytorch={"batch_size": 8})
    out: list[tuple[float, float, Measurement]] = []
    with TemporaryDirectory() as tmp:
        baselines = IdleBaselines(Path(tmp) / "idle.json", clock=clock, sleep=clock.sleep)
        baselines._open_meter = lambda device, interval: ("sim", SimMeter(clock, 60.0))  # type: ignore[method-assign]  # a simulated idle GPU instead of NVML
        for position in range(items):
            gap = cool_down(gap_before(position, per_cycle, 0.0, cycle_gap_s), quiet, clock.sleep)
            start = clock()
            inst = Instruments(
                meter=SimMeter(clock, 300.0),
                sampler=SimSampler(gpu),
                thermal=ThermalReader(lambda: read(gpu), 0.5),
                idle=baselines.get(config),
                clock=clock,
                wall_clock=clock,
            )
            m = run(SimEngine(clock, batch_s), config, inst)
            out.append((gap, clock() - start - m.metrics.duration_s, m))
    return out


def how(m: Measurement) -> str:
    th = m.thermal
    assert th is not None
    return f"{th.method} after {th.batches} batches, {th.waited_s:.1f} s"


def stable(args: argparse.Namespace) -> None:
    results = run_items(StableGpu(), args.items, args.batch_s)
    outside = [o for _, o, _ in results]
    spec = results[0][2]
    print(
        f"stable GPU (55 C, 300 W throughout); defaults: warmup at least 3 batches x "
        f"{args.batch_s}s until steady (over the trailing 5 s, from 1.5 s of readings), "
        f"idle baseline 10 s once per session"
    )
    print(
        f"first item: {outside[0]:.1f} s outside the window (includes the session's idle "
        f"baseline); {how(spec)}"
    )
    print(f"later items: {sum(outside[1:]) / max(1, len(outside) - 1):.1f} s outside the window")
    print(
        f"mean of {args.items} items: {sum(outside) / len(outside):.1f} s   "
        f"(warmup then a separate 5 s thermal window: 16.5 / 6.5 s; seed protocol: 90+ s)"
    )


def heating(args: argparse.Namespace) -> None:
    results = run_items(HeatingGpu(), 3, args.batch_s)
    print()
    print("heating GPU (under load: 200 -> 300 W and 45 -> 70 C over 20 s, then flat)")
    first = results[0][2]
    assert first.warmup is not None
    started = first.warmup.duration_s  # seconds under load before the window began
    verdict = "after" if started > 20.0 else "BEFORE"
    print(
        f"first item: {results[0][1]:.1f} s outside the window (with the idle baseline); "
        f"warmup waited "
        f"{started:.1f} s under load ({how(first)}): the window began {verdict} the plateau "
        f"(20.0 s), {started - 20.0:+.1f} s"
    )
    later = [o for _, o, _ in results[1:]]
    print(f"later items: {sum(later) / len(later):.1f} s outside the window (at the plateau)")


def cooling(args: argparse.Namespace) -> None:
    print()
    print(
        "GPU cooling in a cycle gap (first-order model, 35 C idle / 70 C loaded, tau 15 s; "
        "2 items per cycle, cycle_gap_s 60)"
    )
    for position, (gap, outside, m) in enumerate(run_items(FirstOrderGpu(), 6, args.batch_s, 60)):
        assert m.sampler is not None
        temps = m.sampler.temperature_c
        warnings = ",".join(w.code for w in m.warnings if w.code != "baseline_missing") or "none"
        print(
            f"item {position + 1}: gap {gap:2.0f} s, {outside:5.1f} s outside the window, "
            f"{how(m)}; window {temps['min']:.1f} -> {temps['max']:.1f} C; warnings: {warnings}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-s", type=float, default=0.5, help="seconds per generate call")
    parser.add_argument("--items", type=int, default=10)
    args = parser.parse_args()
    stable(args)
    heating(args)
    cooling(args)


if __name__ == "__main__":
    main()
