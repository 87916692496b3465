"""Prompt sources: ``synthetic`` token ids, built-in prompt sets, and ``.jsonl`` files.

Pure: no torch. Engines tokenise what this module returns.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pytest_llem.errors import LlemError
from pytest_llem.study.experiment import DatasetConfig, ExperimentConfig
from pytest_llem.study.sources import BUILTIN_DATASETS, source_path, source_problem

BUILTIN: dict[str, str] = BUILTIN_DATASETS
# Field names tried in order when a JSONL file's prompt column is not configured.
PROMPT_COLUMNS: tuple[str, ...] = ("prompt", "text", "question", "instruction", "input", "content")


class DatasetError(LlemError):
    """A dataset that cannot be read; names the file, the line and the fix."""


def resolve_source(dataset: DatasetConfig, base_dir: Path | None) -> Path | None:
    """The JSONL file behind a dataset (None for ``synthetic``)."""
    source = dataset.source
    if source == "synthetic":
        return None
    if source in BUILTIN:
        return Path(__file__).parent / "data" / BUILTIN[source]
    problem = source_problem(source, base_dir)
    if problem is not None:  # collection checks this too; a file may vanish in between
        raise DatasetError(*problem)
    return source_path(source, base_dir)


def _prompt_of(record: object, column: str | None) -> str | None:
    if isinstance(record, str):
        return record
    if not isinstance(record, dict):
        return None
    if column is not None:
        value = record.get(column)
        return value if isinstance(value, str) else None
    for name in PROMPT_COLUMNS:
        if isinstance(record.get(name), str):
            return str(record[name])
    messages = record.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, str):
                    return content
    return None


def read_jsonl_prompts(path: Path, column: str | None) -> list[str]:
    """Read prompts from a JSONL file, detecting the prompt field when ``column`` is None."""
    return [prompt for prompt, _ in read_jsonl_records(path, column)]


def read_jsonl_records(path: Path, column: str | None) -> list[tuple[str, str]]:
    """(prompt, source) pairs of a JSONL file; header lines (all keys ``_``-prefixed) skipped.

    ``source`` is the record's ``source`` field, or "" (it drives ``dataset_order: grouped``).
    """
    prompts: list[tuple[str, str]] = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg})", "one JSON object per line"
                ) from None
            if isinstance(record, dict) and record and all(str(k).startswith("_") for k in record):
                continue  # a provenance header, as LLenergyMeasure's files carry
            prompt = _prompt_of(record, column)
            if prompt is None:
                wanted = repr(column) if column else f"one of {list(PROMPT_COLUMNS)} or messages"
                raise DatasetError(
                    f"{path}:{lineno}: no prompt field ({wanted})",
                    "set dataset.column to the field that holds the prompt",
                )
            source = record.get("source") if isinstance(record, dict) else None
            prompts.append((prompt, source if isinstance(source, str) else ""))
    if not prompts:
        raise DatasetError(f"{path} holds no prompts", "add at least one JSON line")
    return prompts


def ordered(records: list[tuple[str, str]], order: str | None, seed: int) -> list[str]:
    """Prompts in ``dataset_order``, as LLenergyMeasure ordered them.

    None/interleaved: file order (its files are written round-robin by source); grouped: a
    stable sort by source; shuffled: a shuffle seeded by ``seed`` (the experiment's
    ``random_seed``).
    """
    rows = list(records)
    if order == "grouped":
        rows.sort(key=lambda row: row[1])
    elif order == "shuffled":
        random.Random(seed).shuffle(rows)
    return [prompt for prompt, _ in rows]


def take(prompts: list[str], n: int) -> list[str]:
    """The first ``n`` prompts, cycling when the file holds fewer (deterministic)."""
    return [prompts[i % len(prompts)] for i in range(n)]


def synthetic_ids(
    vocab_size: int, special_ids: Iterable[int], n: int, input_len: int, seed: int
) -> list[tuple[int, ...]]:
    """``n`` prompts of exactly ``input_len`` random non-special token ids, seeded."""
    special = set(special_ids)
    pool = [i for i in range(vocab_size) if i not in special]
    if not pool:
        raise DatasetError("the tokenizer has no ordinary tokens", "use a jsonl dataset")
    rng = random.Random(seed)
    return [tuple(rng.choice(pool) for _ in range(input_len)) for _ in range(n)]


def tokenized_requests(
    tokenizer: Any, config: ExperimentConfig, base_dir: Path | None
) -> list[Any]:
    """``config.n`` prompts as token ids, truncated to ``max_input_tokens`` (any HF tokenizer).

    Synthetic prompts are drawn from the tokenizer's ordinary vocabulary, so two backends
    that share a tokenizer measure exactly the same inputs.
    """
    from pytest_llem.engines.engine import Request

    source = resolve_source(config.dataset, base_dir)
    limit = config.max_input_tokens
    if source is None:
        seed = config.dataset.seed if config.dataset.seed is not None else config.random_seed
        ids = synthetic_ids(
            len(tokenizer),
            tokenizer.all_special_ids,
            config.n,
            min(config.dataset.input_len, limit),
            seed,
        )
        return [Request(token_ids=t) for t in ids]
    records = read_jsonl_records(source, config.dataset.column)
    texts = take(ordered(records, config.dataset_order, config.random_seed), config.n)
    encoded = tokenizer(texts, truncation=True, max_length=limit)["input_ids"]
    return [Request(token_ids=tuple(int(t) for t in row)) for row in encoded]
