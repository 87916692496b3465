"""A serving item where it runs: its server (started, reused or an endpoint), its meters, the
serving protocol, and the server's state in the result.

Called by ``runners.local.execute`` for items with a ``serve:`` section, so a serving item
measures the same way in this process and in a container. A server that dies during the item
fails it with its last log lines, and the next item starts a fresh one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from pytest_llem.devices import GpuRef
from pytest_llem.energy import nvml
from pytest_llem.energy.disturbance import WindowWatch
from pytest_llem.energy.host_load import HostReader
from pytest_llem.energy.select import select_meter
from pytest_llem.engines import loading
from pytest_llem.engines.servers import Served, ServerCache, serving_prompts
from pytest_llem.measure import serving
from pytest_llem.measure.idle_power import IdleReading
from pytest_llem.measure.phases import Progress
from pytest_llem.measure.protocol import Instruments
from pytest_llem.results.records import Measurement
from pytest_llem.runners.instruments import gpu_instruments
from pytest_llem.runners.run_spec import RunSpec
from pytest_llem.serving.errors import ServingError
from pytest_llem.serving.ready import server_root


def serving_gpus(device: str) -> list[GpuRef]:
    """The GPUs a server on this machine may use: those CUDA makes visible (all by default).

    By index: the server is another process, whose CUDA devices this one cannot ask torch
    about without opening a context on them.
    """
    if device != "cuda":
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        count = len([v for v in visible.split(",") if v.strip()])
    else:
        count = int(nvml.query(lambda pynvml: pynvml.nvmlDeviceGetCount(), 0))
    return [GpuRef(i) for i in range(count)]


def log_dir(spec: RunSpec) -> Path:
    """Where server logs are kept: beside the results, else a temporary directory."""
    if spec.server_log_dir:
        return Path(spec.server_log_dir)
    return Path(tempfile.gettempdir()) / "llem-servers"


def _server_record(served: Served) -> dict[str, Any]:
    return {
        "base_url": served.base_url,
        "model": served.model,
        "ours": served.process is not None,
        "reused": served.cached,
        "start_s": served.start_s,
        "log": str(served.log_path) if served.log_path is not None else None,
        "replaced": served.note,
    }


def execute(spec: RunSpec, servers: ServerCache, progress: Progress) -> Measurement:
    """Start (or reuse) the item's server, load it as its ``serve:`` section says, measure."""
    config = spec.config
    assert config.serve is not None
    base_dir = Path(spec.base_dir) if spec.base_dir else None
    progress("load", f"server for {config.model}")
    served = servers.get(config, base_dir, log_dir(spec))
    prompts = serving_prompts(config, base_dir)
    gpus = serving_gpus(config.device)
    meter = select_meter(config, spec.energy_backend, gpus)
    run_meter = select_meter(config, spec.energy_backend, gpus)
    idle = spec.idle
    target = serving.Target(served.base_url, served.model, server_root(served.base_url))
    try:
        with gpu_instruments(spec, gpus) as (sampler, _, facts, gpu_watch):
            inst = Instruments(
                meter=meter,
                sampler=sampler,
                idle=IdleReading(idle.per_device_w, idle.measured_at, idle.method, idle.reason),
                progress=progress,
                device_warnings=facts,
                # Our own server is in this process's tree, so its CPU is not "other
                # processes"; an endpoint's server is someone else's and counts.
                watch=WindowWatch(config.validity, HostReader(), gpu_watch),
            )
            measurement, record = serving.run(config, target, prompts, inst, run_meter)
    except ServingError as exc:
        if served.process is not None and not served.process.alive():
            raise served.process.died("during the item") from exc
        raise
    finally:
        meter.close()
        run_meter.close()
    if served.process is not None and not served.process.alive():
        raise served.process.died("during the item")
    record["server"] = _server_record(served)
    return measurement.model_copy(
        update={
            "model_load_s": served.start_s,
            "model_cached": served.cached,
            "serving": record,
            # Library versions of our own server's backend (an endpoint's are its own).
            "environment": {
                **(loading.environment(config) if served.process is not None else {}),
                **measurement.environment,
            },
        }
    )
