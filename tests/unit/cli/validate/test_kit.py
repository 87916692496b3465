"""The validation kit end to end on CPU: a tiny random Llama through the plugin, the fake NVML
as the GPU, an independent process reading it, and the markdown report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.cli.validate import command
from pytest_llem.cli.validate.analysis import probe_window
from pytest_llem.cli.validate.probe import ProbeRecord
from pytest_llem.devices import GpuRef
from pytest_llem.engines.pytorch import engine as engine_module
from pytest_llem.runners import local


def test_probe_window_interpolates_the_edges() -> None:
    records = [
        ProbeRecord(t=float(t), device="GPU-a", energy_mj=100_000 * t, power_w=100.0)
        for t in range(5)
    ]
    counter, integral, inside = probe_window(records, 0.5, 3.5)
    assert counter == pytest.approx(300.0) and integral == pytest.approx(300.0) and inside == 3


def test_the_kit_runs_on_cpu_against_the_fake_nvml(
    fake_nvml: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_nvml.add("GPU-a", power_w=150.0)
    # The engine runs on CPU but reports the fake GPU, so the plugin's NVML meter measures it.
    monkeypatch.setattr(
        engine_module.TransformersEngine, "devices", lambda self: [GpuRef(0, "GPU-a")]
    )
    # ... and its sampler and thermal reader (opened for cuda points only) watch that GPU too.
    opened = local.gpu_instruments

    def instruments(spec: Any, gpus: list[GpuRef]) -> Any:
        cuda = spec.config.model_copy(update={"device": "cuda"})
        return opened(spec.model_copy(update={"config": cuda}), gpus)

    monkeypatch.setattr(local, "gpu_instruments", instruments)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "kit"
    code = command.main(
        [
            "--shape", "tiny", "--device", "cpu", "--cycles", "5", "--batch-sizes", "1,2",
            "--n", "2", "--input-len", "8", "--max-output-tokens", "4", "--window-s", "1", "--precision", "fp32",
            "--thermal-max-s", "1",
            "--interval-ms", "10", "--idle-s", "0", "--zeus", "off", "--out", str(out),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    report = json.loads((out / "validation.json").read_text())
    assert [c["cycles"] for c in report["configs"]] == [5, 5]
    assert all(c["energy_cv_pct"] is not None for c in report["configs"])
    assert len(report["windows"]) == 10
    for window in report["windows"]:
        # A constant 150 W: the counter and the integration agree with the plugin's reading.
        # Each side timestamps its counter reads with the wall clock, so a process descheduled
        # between a read and its timestamp shifts an edge: 1% of a 0.3 s window (3 ms) was
        # exceeded once with both cores busy. 1 s windows and 5% allow 50 ms of such stalls.
        assert window["counter_diff_pct"] == pytest.approx(0.0, abs=5.0)
        assert window["power_diff_pct"] == pytest.approx(0.0, abs=5.0)
        assert window["plugin_j"] == pytest.approx(150.0 * window["duration_s"], rel=0.05)
        assert window["probe_samples"] > 0
    text = (out / "validation.md").read_text()
    assert "## Cycle-to-cycle variation" in text and "GPU-a" in text and text in printed
    assert "NVIDIA H100 80GB HBM3" in text and "550.54.15" in text
    assert "Zeus is not installed" in text or "Zeus" in text


def test_fewer_than_five_cycles_is_refused() -> None:
    with pytest.raises(SystemExit):
        command.parse(["--cycles", "3"])
