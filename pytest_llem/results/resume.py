"""Resume an interrupted run: read the passed items of an earlier results.jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def load(results_dir: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Passed results by nodeid (the last line wins), and one warning per unreadable line.

    A truncated last line (a crash mid-write) or a corrupt line is skipped with a warning,
    never a traceback: everything else in the file is still reused.
    """
    path = results_dir / "results.jsonl"
    records: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return {}, [f"--llem-resume: cannot read {path}: {exc.strerror}; nothing is resumed"]
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            nodeid = record["nodeid"]
            outcome = record["outcome"]
        except (ValueError, KeyError, TypeError):
            warnings.append(f"{path}:{number}: unreadable result line skipped")
            continue
        if outcome == "passed" and record.get("metrics") is not None:
            records[nodeid] = record
    return records, warnings
