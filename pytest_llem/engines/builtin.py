"""The built-in backends, registered like any other (``plugin.pytest_llem_backends``).

Each lives in a package of its own (``engines/pytorch/``, ``engines/vllm/``): engine, study
section and registry entry, pre-flight checks, host facts. This module only assembles them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_llem.engines.pytorch.spec import PYTORCH
from pytest_llem.engines.vllm.spec import VLLM
from pytest_llem.study.backends import BackendRegistry
from pytest_llem.study.experiment import ExperimentConfig, experiment_model

BUILTIN = BackendRegistry((PYTORCH, VLLM))
"""The built-in registry (pytorch first: the default backend of a study that names none)."""

if TYPE_CHECKING:
    BuiltinConfig = ExperimentConfig
else:
    BuiltinConfig = experiment_model(BUILTIN)
"""The ExperimentConfig model of the built-in registry (``pytorch:`` and ``vllm:`` sections)."""
