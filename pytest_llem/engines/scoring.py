"""Texts and token sequences the engines score for the quality checks (pure: no torch).

The perplexity text is ``data/perplexity_en.jsonl`` unless a study names its own file
(``quality.perplexity_text``): a ``.txt`` file is read whole, a ``.jsonl`` file's records are
joined by blank lines (the prompt field is detected as for datasets).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_llem.engines.datasets import DatasetError, read_jsonl_prompts
from pytest_llem.study.sources import source_path

BUILTIN_TEXT = Path(__file__).parent / "data" / "perplexity_en.jsonl"
BUILTIN_NAME = "builtin:perplexity_en"


def read_text(source: str | None, base_dir: Path | None) -> tuple[str, str]:
    """(the text, its name) of ``quality.perplexity_text``.

    Raises:
        DatasetError: the file is missing, of another kind, or empty.
    """
    if source is None:
        path, name = BUILTIN_TEXT, BUILTIN_NAME
    else:
        path = source_path(source, base_dir)
        name = path.name
    if path.suffix not in (".txt", ".jsonl"):
        raise DatasetError(
            f"quality.perplexity_text {source!r} is neither a .txt nor a .jsonl file",
            "name a plain-text (.txt) or JSON lines (.jsonl) file, or remove the key for the "
            "text shipped with pytest-llem",
        )
    if not path.is_file():
        raise DatasetError(
            f"quality.perplexity_text: {path} does not exist",
            "check the path (relative paths are relative to the study file)",
        )
    if path.suffix == ".jsonl":
        text = "\n\n".join(read_jsonl_prompts(path, None))
    else:
        text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise DatasetError(f"quality.perplexity_text: {path} holds no text", "fill the file")
    return text, name


def text_tokens(tokenizer: Any, source: str | None, base_dir: Path | None) -> tuple[list[int], str]:
    """The perplexity text as the tokenizer's ids (special tokens as it adds them), its name."""
    text, name = read_text(source, base_dir)
    return [int(t) for t in tokenizer.encode(text)], name


def chunks(ids: Sequence[int], limit: int, window: int) -> list[list[int]]:
    """The first ``limit`` ids cut into windows of ``window`` tokens (a last window shorter
    than two tokens predicts nothing and is dropped)."""
    kept = list(ids[:limit])
    parts = [kept[i : i + window] for i in range(0, len(kept), max(2, window))]
    return [p for p in parts if len(p) >= 2]
