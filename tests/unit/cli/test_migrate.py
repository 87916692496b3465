"""``python -m pytest_llem migrate``: current names, same hashes, comments kept."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llem.cli.migrate import main, migrate_text
from pytest_llem.testing import load_study

ORIGINAL = Path(__file__).parents[1] / "study" / "data" / "llenergymeasure"
CHANGED = [
    "experiment-pytorch.yaml",
    "experiment-vllm.yaml",
    "study-realistic.yaml",
    "study-reference.yaml",
    "docs/study-config-02.yaml",
    "docs/study-config-08.yaml",
]


@pytest.mark.parametrize("name", CHANGED)
def test_a_migrated_file_yields_the_same_hashes_without_notes(name: str, tmp_path: Path) -> None:
    path = tmp_path / Path(name).name
    shutil.copy(ORIGINAL / name, path)
    before = load_study(path)
    assert main([str(path)]) == 0
    after = load_study(path)
    assert [(p.id, p.config_hash) for p in after.points] == [
        (p.id, p.config_hash) for p in before.points
    ]
    assert after.execution == before.execution
    assert not any("names accepted" in note for note in after.notes)
    assert main(["--check", str(path)]) == 0  # now current


def test_comments_and_layout_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "study-reference.yaml"
    shutil.copy(ORIGINAL / "study-reference.yaml", path)
    new, how = migrate_text(path)
    assert how == "comments kept"
    assert "  experiment_gap_s: 10.0  # Pause between experiments (thermal stabilisation)" in new
    assert "thermal.min_s: 30.0\n" in new and "thermal_floor_seconds" not in new
    assert "skip_preflight" not in new
    old_lines = (ORIGINAL / "study-reference.yaml").read_text().splitlines()
    assert sum(1 for line in old_lines if line.lstrip().startswith("#")) == sum(
        1 for line in new.splitlines() if line.lstrip().startswith("#")
    )


def test_a_block_left_empty_becomes_an_empty_mapping(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("model: m\nwarmup:  # the old floor\n  thermal_floor_seconds: 5\nn: 3\n")
    new, how = migrate_text(path)
    assert how == "comments kept"
    assert new == "model: m\nwarmup: {}  # the old floor\nthermal.min_s: 5\nn: 3\n"


def test_a_change_lines_cannot_express_is_dumped_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("model: m\nwarmup: {thermal_floor_seconds: 5}  # flow style\n")
    new, how = migrate_text(path)
    assert "comments were not kept" in how
    assert load_study(path).points[0].config_hash == load_text(tmp_path, new).points[0].config_hash


def load_text(tmp_path: Path, text: str) -> object:
    other = tmp_path / "other.yaml"
    other.write_text(text)
    return load_study(other)


def test_check_changes_nothing_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.yaml"
    text = "model: m\nbaseline: {duration_seconds: 20}\n"
    path.write_text(text)
    assert main(["--check", str(path)]) == 1
    assert path.read_text() == text
    assert "would be migrated" in capsys.readouterr().out


def test_a_file_with_errors_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("model: m\nexecution: {skip_preflight: true}\n")
    assert main([str(path)]) == 2
    assert "skip_preflight" in path.read_text()


def test_the_module_runs_migrate(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("model: m\nbaseline:\n  duration_seconds: 20  # idle\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_llem", "migrate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert path.read_text() == "model: m\nbaseline:\n  duration_s: 20  # idle\n"
