"""Protocol overhead: seconds an item spends outside its measured window, with defaults.

Drives the real protocol (measure.protocol.run, measure.thermal.ThermalWait, the idle
baseline provider) with a simulated clock, a stable simulated GPU and an engine whose
batches take a fixed time, so the figures are the protocol's own, not this machine's.
LLenergyMeasure's seed protocol spent 90+ s per experiment outside the window: a 30 s idle
baseline per experiment and a fixed 60 s thermal floor, plus warmup.

Run: python benchmarks/perf/bench_protocol.py [--batch-s 0.5] [--items 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from tempfile import TemporaryDirectory

from pytest_llem.energy.meter import EnergyReading, MeterInfo
from pytest_llem.engines.builtin import BuiltinConfig
from pytest_llem.engines.engine import BatchResult, Completion, MemoryInfo, Request
from pytest_llem.engines.pytorch.spec import section as pytorch_section
from pytest_llem.measure.idle_power import IdleBaselines
from pytest_llem.measure.protocol import Instruments, run
from pytest_llem.measure.thermal import ThermalWait


class SimClock:
    """Simulated time: sleeping and generating advance it, nothing waits for real."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
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
        self.clock.sleep(self.batch_s)
        return BatchResult([Completion(64, 128, self.batch_s) for _ in batch], self.batch_s)

    def memory(self) -> MemoryInfo:
        return MemoryInfo(None, None)

    def devices(self) -> list[object]:
        return []

    def close(self) -> None:
        pass


class SimMeter:
    """A GPU drawing 300 W under load (the counter's view), 60 W idle."""

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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch-s", type=float, default=0.5, help="seconds per generate call")
    parser.add_argument("--items", type=int, default=10)
    args = parser.parse_args()
    clock = SimClock()
    config = BuiltinConfig(model="m", device="cuda", n=32, pytorch={"batch_size": 8})
    with TemporaryDirectory() as tmp:
        baselines = IdleBaselines(Path(tmp) / "idle.json", clock=clock, sleep=clock.sleep)
        baselines._open_meter = lambda device, interval: ("sim", SimMeter(clock, 60.0))  # type: ignore[method-assign]
        outside: list[float] = []
        for _ in range(args.items):
            start = clock()
            idle = baselines.get(config)
            thermal = ThermalWait(lambda: [("GPU-sim", 55.0, 300.0)], 0.5, clock, clock.sleep)
            inst = Instruments(
                meter=SimMeter(clock, 300.0),
                thermal=thermal,
                idle=idle,
                clock=clock,
                wall_clock=clock,
            )
            m = run(SimEngine(clock, args.batch_s), config, inst)
            outside.append(clock() - start - m.metrics.duration_s)
    print(
        f"defaults: warmup {config.warmup.n_warmup} batches x {args.batch_s}s, thermal window "
        f"{config.thermal.window_s:g}s (stable GPU), idle baseline {config.baseline.duration_s:g}s once"
    )
    print(
        f"first item:      {outside[0]:6.1f} s outside the window (includes the session's idle baseline)"
    )
    print(
        f"later items:     {sum(outside[1:]) / max(1, len(outside) - 1):6.1f} s outside the window"
    )
    print(
        f"mean of {args.items} items: {sum(outside) / len(outside):6.1f} s   (seed protocol: 90+ s per experiment)"
    )


if __name__ == "__main__":
    main()
