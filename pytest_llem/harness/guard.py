"""Session-start guards: a writable results directory with room, and SIGTERM handled like
Ctrl-C so a cancelled CI job still writes its report and removes its containers."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

MIN_FREE_BYTES = 50_000_000
_CHECKED = pytest.StashKey[bool]()


def check_results_dir(path: Path, min_free: int = MIN_FREE_BYTES) -> str | None:
    """None when results can be written to ``path``; otherwise the problem and its fix."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".llem-write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        return (
            f"results directory {path} is not writable ({exc.strerror or exc}); "
            "fix its permissions or choose another with --llem-results DIR"
        )
    free = shutil.disk_usage(path).free
    if free < min_free:
        return (
            f"results directory {path} has only {free / 1e6:.1f} MB free (need "
            f"{min_free / 1e6:.0f} MB); free space or choose another with --llem-results DIR"
        )
    return None


def results_dir_or_exit(config: pytest.Config, path: Path) -> None:
    """Stop the session before any item runs when its results could not be written."""
    if config.option.collectonly or config.stash.get(_CHECKED, False):
        return
    config.stash[_CHECKED] = True
    problem = check_results_dir(path, int(os.environ.get("LLEM_MIN_FREE_BYTES", MIN_FREE_BYTES)))
    if problem is not None:
        pytest.exit(f"pytest-llem: {problem}", returncode=pytest.ExitCode.USAGE_ERROR)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"received signal {signal.Signals(signum).name}")


def install_sigterm() -> Any:
    """Turn SIGTERM into KeyboardInterrupt (pytest's clean stop: exit 2, hooks run)."""
    try:
        return signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread (embedded use): leave signals alone
        return None


def restore_sigterm(previous: Any) -> None:
    """Put the previous SIGTERM handler back."""
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
