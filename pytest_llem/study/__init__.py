"""Study grammar: YAML -> validated configs -> StudyPlan. Pure: no pytest, torch or docker."""

from __future__ import annotations

from pytest_llem.study.expand import DEFAULT_MAX_POINTS, load
from pytest_llem.study.experiment import ExperimentConfig
from pytest_llem.study.plan import PlannedItem, Point, StudyPlan

__all__ = ["DEFAULT_MAX_POINTS", "ExperimentConfig", "PlannedItem", "Point", "StudyPlan", "load"]
