"""Choose the energy meter for a point, and probe sources for pre-flight.

``auto`` picks the best available source for the device (NVML for cuda, RAPL for cpu) and
falls back to the null meter with the reason; an explicitly requested source that is
unavailable is an error, never a silent zero.
"""

from __future__ import annotations

from pathlib import Path

from pytest_llem.devices import GpuRef
from pytest_llem.energy import nvml, rapl
from pytest_llem.energy.crosscheck import CrosscheckMeter
from pytest_llem.energy.meter import EnergyMeter
from pytest_llem.energy.null import NullMeter
from pytest_llem.energy.nvml_meter import NvmlMeter
from pytest_llem.errors import LlemError
from pytest_llem.study.experiment import ExperimentConfig

FIXES: dict[str, str] = {
    "nvml": "install the NVIDIA driver and nvidia-ml-py, or set energy.backend: auto",
    "zeus": 'pip install "pytest-llem[zeus]", or set energy.backend: auto',
    "rapl": "run where /sys/class/powercap/intel-rapl:* is readable, or set energy.backend: auto",
}


class EnergyUnavailable(LlemError):  # noqa: N818 - reads as a state, like the vendors' errors
    """An explicitly requested energy source cannot be used."""


def requested(config: ExperimentConfig, override: str | None) -> str:
    """The energy backend in force: ``--llem-energy`` over the study's ``energy.backend``."""
    return override or config.energy.backend


def _open(
    source: str, config: ExperimentConfig, gpus: list[GpuRef], rapl_root: Path
) -> EnergyMeter:
    if source == "rapl":
        return rapl.RaplMeter(rapl_root)
    if source == "zeus":
        from pytest_llem.energy.zeus import ZeusMeter

        return ZeusMeter(
            [g.cuda_index for g in gpus], [g.uuid or f"cuda:{g.cuda_index}" for g in gpus]
        )
    pynvml = nvml.load()
    try:
        handles = nvml.resolve_handles(pynvml, gpus)
        if not handles:
            raise nvml.NvmlUnavailable("no NVML: the engine reported no CUDA device")
        return NvmlMeter(pynvml, handles, config.energy.sample_interval_s)
    except BaseException:
        nvml.release(pynvml)
        raise


def select_meter(
    config: ExperimentConfig,
    override: str | None,
    gpus: list[GpuRef],
    rapl_root: Path = rapl.DEFAULT_ROOT,
) -> EnergyMeter:
    """The meter for one item (with ``energy.crosscheck``, paired with a second source).

    Raises:
        EnergyUnavailable: an explicitly requested source cannot be opened.
    """
    meter = _select(config, override, gpus, rapl_root)
    second = config.energy.crosscheck
    if second is None:
        return meter
    try:
        other = _select(config, second, gpus, rapl_root)
    except BaseException:
        meter.close()
        raise
    return CrosscheckMeter(meter, other)


def _select(
    config: ExperimentConfig, override: str | None, gpus: list[GpuRef], rapl_root: Path
) -> EnergyMeter:
    source = requested(config, override)
    if source == "null":
        return NullMeter("energy measurement disabled (energy.backend: null)")
    explicit = source != "auto"
    if not explicit:
        source = "nvml" if config.device == "cuda" else "rapl"
    try:
        return _open(source, config, gpus, rapl_root)
    except (nvml.NvmlUnavailable, rapl.RaplUnavailable) as exc:
        if explicit:
            raise EnergyUnavailable(
                f"energy.backend {source} is unavailable: {exc}", FIXES[source]
            ) from None
        return NullMeter(str(exc))
    except Exception as exc:
        from pytest_llem.energy.zeus import ZeusUnavailable

        if isinstance(exc, ZeusUnavailable):
            raise EnergyUnavailable(
                f"energy.backend zeus is unavailable: {exc}", FIXES["zeus"]
            ) from None
        raise


def probe(source: str, rapl_root: Path = rapl.DEFAULT_ROOT) -> str | None:
    """None when ``source`` can be used on this host; otherwise the reason."""
    try:
        if source == "rapl":
            rapl.zones(rapl_root)
        elif source == "zeus":
            from pytest_llem.energy.zeus import _monitor_class

            _monitor_class()
        elif source == "nvml":
            return nvml.probe_reason()
    except Exception as exc:  # every probe failure is a reason to report, not a crash
        return str(exc)
    return None
