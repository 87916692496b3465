"""A disturbed machine, for real: busy loops on every CPU beside a study in its own process.

The study runs in a pytest subprocess (``runpytest_subprocess``) so that the burners, children
of this test process, are other processes to it. One burner per CPU the study may use makes
contention unmistakable (about half of the CPUs, against a 25% limit). Where a quiet machine
cannot be promised (CI runs this suite beside itself), the quiet case injects quiet readings.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.plugin.test_run import junit_properties


def _spin(started: Any, stop: Any) -> None:
    started.set()
    while not stop.is_set():
        sum(i * i for i in range(10_000))


@pytest.fixture
def burners() -> Iterator[int]:
    """One busy loop per CPU this process may run on, spinning until the test ends."""
    cpus = len(os.sched_getaffinity(0))
    stop = multiprocessing.Event()
    started = [multiprocessing.Event() for _ in range(cpus)]
    procs = [multiprocessing.Process(target=_spin, args=(s, stop)) for s in started]
    try:
        for p in procs:
            p.start()
        for s in started:
            assert s.wait(60), "a burner did not start"
        yield cpus
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()


def study(model: Path, validity: str) -> str:
    """Two items with windows long enough for the host check (1 s), warmup not judged."""
    return (
        f"model: {model}\ndevice: cpu\nprecision: fp32\nn: 4\nmax_output_tokens: 4\n"
        "max_input_tokens: 16\ndataset: {source: synthetic, input_len: 8}\n"
        "warmup: {n_warmup: 1}\nthermal: {enabled: false}\nwindow: {min_duration_s: 1.5}\n"
        f"validity: {{min_window_s: 0, min_samples: 0, {validity}}}\n"
        "gate: {budgets: {latency_p50_s: 1000}}\n"
        "sweep:\n  pytorch.batch_size: [1, 2]\n"
    )


def report(pytester: pytest.Pytester) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((pytester.path / "out" / "report.json").read_text())[
        "items"
    ]
    return items


def flag(item: dict[str, Any], code: str) -> dict[str, Any]:
    return next(w for w in item["warnings"] if w["code"] == code)


def test_busy_loops_are_flagged_and_kept_under_warn(
    pytester: pytest.Pytester, tiny_gpt2: Path, burners: int
) -> None:
    pytester.makefile(".yaml", study_busy=study(tiny_gpt2, "on_disturbed: warn"))
    result = pytester.runpytest_subprocess("--llem-results=out", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2)
    # The pre-flight line saw them before any item ran.
    result.stdout.fnmatch_lines(
        [f"llem host: {burners} cores, other processes use *% now (*; fix: stop the other work*"]
    )
    cores = f"of {burners} cores"
    for item in report(pytester):
        found = flag(item, "host_contention")
        assert found["figures"]["others_share"] > 0.35, found  # against a 25% limit
        assert found["message"].startswith(f"{found['figures']['brief']} used by other processes")
        assert found["figures"]["brief"].endswith(cores)
        # A verdict on a disturbed cycle says so.
        assert "measured on a disturbed machine" in item["gate"]["note"]
    props = junit_properties(pytester.path / "junit.xml")["pytorch-bs1"]
    assert "host_contention" in props["llem.warnings"].split(",")
    assert f"{cores} used by other processes" in props["llem.warning.host_contention"]
    result.stdout.fnmatch_lines([f"pytorch-bs1*passed*host_contention *% {cores}*"])


def test_busy_loops_fail_the_items_under_fail(
    pytester: pytest.Pytester, tiny_gpt2: Path, burners: int
) -> None:
    pytester.makefile(".yaml", study_busy=study(tiny_gpt2, "on_disturbed: fail"))
    result = pytester.runpytest_subprocess("--llem-results=out")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "ValidityFailure: disturbed machine: host_contention: "
            f"*% of {burners} cores used by other processes (*",
            "  fix: stop the other work on this machine*",
        ]
    )
    for item in report(pytester):
        assert item["outcome"] == "failed"
        assert item["message"].startswith("ValidityFailure: disturbed machine: host_contention")
        assert "fix: stop the other work on this machine" in item["message"]
        assert item["metrics"]["output_tokens_per_s"] > 0  # what it measured is kept
        assert len(item["environment"]["windows"]) == 1  # measured once
        assert item["gate"] is None  # no sample for the gate


def test_busy_loops_are_retried_then_fail(
    pytester: pytest.Pytester, tiny_gpt2: Path, burners: int
) -> None:
    text = study(tiny_gpt2, "on_disturbed: retry, max_retries: 1, retry_backoff_s: 0")
    pytester.makefile(".yaml", study_busy=text)
    result = pytester.runpytest_subprocess("--llem-results=out", "-k", "bs1")
    result.assert_outcomes(failed=1)
    [item] = report(pytester)
    assert item["message"].startswith(
        "ValidityFailure: disturbed machine in each of 2 windows: host_contention"
    )
    windows = item["environment"]["windows"]
    assert [w["flags"][0].split()[0] for w in windows] == ["host_contention"] * 2
    assert flag(item, "window_retried")["figures"]["discarded"] == 1


READINGS = """
from pytest_llem.energy import host_load
from pytest_llem.runners import local


class Reader(host_load.HostReader):
    '''Real readings, of which {what}.'''

    def snapshot(self):
        got = super().snapshot()
        return host_load.HostSnapshot(**{{**got.__dict__, **{fields}}})


local.HostReader = Reader
"""
# Every busy tick is this run's: a quiet machine.
QUIET = READINGS.format(what="every busy tick is ours", fields='{"own_jiffies": got.times.busy}')
# The CPUs never idle and half their time is someone else's.
BUSY = READINGS.format(
    what="half of every tick is someone else's",
    fields='{"own_jiffies": got.times.total // 2, "times": host_load.CpuTimes(got.times.total, 0, 0)}',
)


def test_a_quiet_machine_carries_no_flag(pytester: pytest.Pytester, tiny_gpt2: Path) -> None:
    pytester.makeconftest(QUIET)
    pytester.makefile(".yaml", study_quiet=study(tiny_gpt2, "on_disturbed: fail"))
    result = pytester.runpytest_subprocess("--llem-results=out")
    result.assert_outcomes(passed=2)
    for item in report(pytester):
        assert not [w for w in item["warnings"] if w["code"].startswith("host_")]
        [window] = item["environment"]["windows"]
        assert window["host"]["others_share"] == 0.0 and window["flags"] == []


def test_disturbed_cycles_are_never_silently_a_baseline(
    pytester: pytest.Pytester, tiny_gpt2: Path
) -> None:
    pytester.makeconftest(BUSY)
    text = study(tiny_gpt2, "on_disturbed: warn").replace(
        "window: {min_duration_s: 1.5}", "window: {min_duration_s: 1.0}"
    )
    pytester.makefile(".yaml", study_busy=text + "execution: {n_cycles: 3}\n")
    result = pytester.runpytest_subprocess(
        "--llem-results=out", "--llem-save-baseline=busy", "-k", "bs1"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*baseline 'busy' NOT saved: these configs have cycles measured on a disturbed machine:",
            "*::pytorch-bs1: cycle 1: host_contention 50% of * cores; cycle 2: *; cycle 3: *",
            "*or store it anyway with --llem-save-baseline-force",
        ]
    )
    assert result.ret == 1
    last = report(pytester)[-1]
    assert (
        "decided on 3 cycle(s) measured on a disturbed machine (cycle 1: host_contention"
        in (last["gate"]["note"])
    )
    forced = pytester.runpytest_subprocess(
        "--llem-results=out2",
        "--llem-save-baseline=busy",
        "--llem-save-baseline-force",
        "-k",
        "bs1",
    )
    forced.stdout.fnmatch_lines(["*baseline 'busy' saved*", "*saved although disturbed: *"])
