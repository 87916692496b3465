"""A hang inside the measured window: the item times out with a one-line reason that says where
and how far it got, every measuring thread is stopped before NVML is released, the engine is
evicted, and the next item passes with sane figures.

The engine is a third-party backend that reports a GPU (the fake NVML plays it: a GPU cannot
exist here), so the window runs with a real sampler thread and NVML meter around it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.echo import ECHO_BACKEND
from tests.hangs import SECOND_WINDOW_HANGS

GPU_ECHO = (
    ECHO_BACKEND.replace(
        "    def generate(self, batch, config):\n        start = time.perf_counter()",
        "    def generate(self, batch, config):\n        time.sleep(0.01)  # a batch takes real time\n"
        "        start = time.perf_counter()",
    )
    .replace(
        "    def devices(self):\n        return []",
        "    def devices(self):\n"
        "        from pytest_llem.devices import GpuRef\n"
        "        return [GpuRef(0, 'GPU-hang')] if self.device == 'cuda' else []",
    )
    .replace(
        "        self.model = config.model",
        "        self.model = config.model\n        self.device = config.device",
    )
    .replace('devices=frozenset({"cpu"}),', 'devices=frozenset({"cpu", "cuda"}),')
)

# The second item hangs after its window's first batch: the window is armed once. At the end
# of the session the census lists the pytest-llem threads still alive and NVML's state.
CONFTEST = (
    SECOND_WINDOW_HANGS
    + """
import json
import threading

from echo_backend import ECHO


def pytest_llem_backends():
    return [ECHO]


def pytest_unconfigure(config):
    alive = sorted(t.name for t in threading.enumerate() if t.name.startswith("llem-"))
    import pynvml
    with open("census.json", "w") as handle:
        json.dump({"threads": alive, "nvml_initialised": pynvml._fake.initialised}, handle)
"""
)

STUDY = """
model: echo-model
backend: echo
device: cuda
precision: fp32
n: 6
max_output_tokens: 8
energy: {backend: nvml, sample_interval_s: 0.05}
baseline: {enabled: false}
warmup: {n_warmup: 1}
thermal: {enabled: false}
window: {min_duration_s: 0.5}
validity: {min_window_s: 0, min_samples: 0}
execution: {timeout_s: 5}
echo: {batch: 1}
sweep:
  echo.repeat: [1, 2, 3]
"""


def test_a_hang_in_the_window_times_out_cleanly_and_the_next_item_passes(
    pytester: pytest.Pytester, fake_nvml: Any
) -> None:
    fake_nvml.add("GPU-hang", power_w=120.0)
    fake_nvml.module._fake = fake_nvml  # the census reads NVML's state through the module
    pytester.makepyfile(echo_backend=GPU_ECHO)
    pytester.syspathinsert()
    pytester.makeconftest(CONFTEST)
    pytester.makefile(".yaml", study_hang=STUDY)
    result = pytester.runpytest("--llem-results=out", "-p", "no:randomly", "--junitxml=j.xml")
    result.assert_outcomes(passed=2, failed=1)
    items = {
        i["point_id"]: i
        for i in json.loads((pytester.path / "out" / "report.json").read_text())["items"]
    }
    hung = items["echo-repeat-2"]
    assert hung["outcome"] == "failed"
    assert hung["message"].startswith("timed out after 5 s in the measured window (0."), hung
    assert "s of 0.5s measured, pass 1)" in hung["message"]
    assert "\n" not in hung["message"] and hung["traceback"]
    assert hung["interrupted"]["phase"] == "measure" and 0 < hung["interrupted"]["after_s"] <= 6
    before, after = items["echo-repeat-1"], items["echo-repeat-3"]
    assert after["outcome"] == "passed" and not after["model_cached"]  # the engine was evicted
    ratio = after["metrics"]["output_tokens_per_s"] / before["metrics"]["output_tokens_per_s"]
    assert 1 / 3 < ratio < 3, ratio
    assert after["energy"]["source"] == "nvml" and after["metrics"]["energy_j"] > 0
    census = json.loads((pytester.path / "census.json").read_text())
    assert census == {"threads": [], "nvml_initialised": 0}
    xml = (pytester.path / "j.xml").read_text()
    assert 'message="timed out after 5 s in the measured window' in xml


def test_a_load_that_raises_is_a_load_error_not_a_timeout(
    pytester: pytest.Pytester, tiny_gpt2: Path, fast_study: Any
) -> None:
    broken = pytester.path / "broken"
    broken.mkdir()
    for f in tiny_gpt2.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    config = json.loads((broken / "config.json").read_text())
    config["model_type"] = "no_such_model_type"  # a model newer than the installed transformers
    (broken / "config.json").write_text(json.dumps(config))
    pytester.makefile(".yaml", study_load=fast_study(broken))
    result = pytester.runpytest("--llem-results=out")
    result.assert_outcomes(failed=1)
    text = result.stdout.str()
    assert "timed out" not in text and "raise the timeout" not in text
    (item,) = json.loads((pytester.path / "out" / "report.json").read_text())["items"]
    assert item["message"].startswith("EngineError: cannot load"), item["message"]
    assert "no_such_model_type" in item["message"] and "upgrade transformers" in item["message"]
