"""The study example of the manual (docs/studies.md) stays valid."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_llem.testing import load_study

README = Path(__file__).resolve().parents[3] / "docs" / "studies.md"


def test_readme_study_example_loads(tmp_path: Path) -> None:
    text = README.read_text()
    block = re.search(r"## A study file\s+```yaml\n(.*?)```", text, re.S)
    assert block is not None
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "common.yaml").write_text("random_seed: 7\n")
    study = tmp_path / "bench" / "study_readme.yaml"
    study.parent.mkdir()
    study.write_text(block.group(1))
    plan = load_study(study, root=tmp_path)
    assert plan.execution.n_cycles == 3
    assert len(plan.valid_points) == 2 * 2 * 2 + 2 * 1 * 2 + 1
    assert all(p.config.random_seed == 7 for p in plan.valid_points if p.config)
