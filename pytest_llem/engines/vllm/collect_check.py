"""Collection-time check of a study's vLLM arguments against the installed vLLM.

Runs without importing vLLM (``source.py`` reads its source), so ``--collect-only`` stays
free of torch. Where vLLM is not installed here (a study run in containers, a machine with
the transformers backend only) nothing is checked: the engine reports at load time.
"""

from __future__ import annotations

from pytest_llem.engines.vllm import source
from pytest_llem.engines.vllm.engine import check_names
from pytest_llem.errors import Problem
from pytest_llem.study.plan import StudyPlan


def study_problems(plan: StudyPlan) -> list[Problem]:
    """One problem per (point line, argument) the installed vLLM does not accept."""
    api = source.installed_api()
    if api is None:
        return []
    version = source.installed_version() or "(unknown version)"
    seen: set[tuple[int | None, str]] = set()
    problems: list[Problem] = []
    for point in plan.points:
        config = point.config
        if config is None or config.backend != "vllm":
            continue
        for name, hint in check_names(config, api):
            if (point.line, name) in seen:
                continue
            seen.add((point.line, name))
            problems.append(
                Problem(
                    field=name,
                    message=f"the installed vLLM {version} has no argument {name!r}"
                    f" (point {point.id})",
                    fix=hint,
                    line=point.line,
                )
            )
    return problems
