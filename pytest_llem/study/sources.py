"""Dataset sources a study may name, checked at collection (before any model loads).

Pure: names and paths only. ``engines.datasets`` reads the files.
"""

from __future__ import annotations

from pathlib import Path

# Built-in prompt sets (name -> file in pytest_llem/engines/data). ``aienergyscore`` is
# LLenergyMeasure's default: 1000 prompts from AIEnergyScore/text_generation (Apache-2.0).
BUILTIN_DATASETS: dict[str, str] = {
    "prompts-en": "prompts_en.jsonl",
    "aienergyscore": "aienergyscore.jsonl",
}


def source_path(source: str, base_dir: Path | None) -> Path:
    """The path a non-builtin ``source`` names (relative paths: relative to ``base_dir``)."""
    path = Path(source).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def source_problem(source: str, base_dir: Path | None) -> tuple[str, str] | None:
    """Why ``source`` cannot be read, as (message, fix); None when it can."""
    if source == "synthetic" or source in BUILTIN_DATASETS:
        return None
    path = source_path(source, base_dir)
    if path.suffix != ".jsonl":
        return (
            f"dataset {source!r} is neither 'synthetic', a built-in name "
            f"{sorted(BUILTIN_DATASETS)}, nor a .jsonl file",
            "set dataset: synthetic, a built-in name, or a path ending in .jsonl",
        )
    if not path.is_file():
        return (
            f"dataset file {path} does not exist",
            "check the path (relative paths are relative to the study file)",
        )
    return None
