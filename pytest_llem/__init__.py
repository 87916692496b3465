"""pytest-llem: LLM inference energy benchmarks as pytest test cases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_llem.results.records import ExperimentResult, Measurement
    from pytest_llem.study import ExperimentConfig, StudyPlan

__all__ = ["ExperimentConfig", "ExperimentResult", "Measurement", "StudyPlan", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: importing the plugin package must stay cheap (no pydantic model building, no torch).
    if name == "__version__":
        from importlib.metadata import version

        return version("pytest-llem")
    if name in ("ExperimentResult", "Measurement"):
        from pytest_llem.results import records as results

        return getattr(results, name)
    if name in ("ExperimentConfig", "StudyPlan"):
        from pytest_llem import study

        return getattr(study, name)
    raise AttributeError(name)
