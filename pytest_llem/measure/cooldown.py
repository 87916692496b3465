"""Cool-down between items and cycles (``execution.experiment_gap_s`` / ``cycle_gap_s``).

As in LLenergyMeasure's study runner: an experiment gap before every item but the first of a
study, and a cycle gap in addition after every full round of its configs (by position in the
run order). The wait is shown in the live progress line and recorded in the result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

Progress = Callable[[str, str], None]
Sleep = Callable[[float], None]
STEP_S = 1.0


def gap_before(position: int, n_configs: int, experiment_gap_s: float, cycle_gap_s: float) -> float:
    """Seconds to wait before the item at ``position`` (0-based) of a study's run order."""
    if position == 0:
        return 0.0
    gap = experiment_gap_s
    if n_configs > 0 and position % n_configs == 0:
        gap += cycle_gap_s
    return gap


def cool_down(seconds: float, progress: Progress, sleep: Sleep = time.sleep) -> float:
    """Wait ``seconds`` in steps of at most ``STEP_S``, showing the time left; return it."""
    remaining = seconds
    while remaining > 0:
        progress("cool-down", f"{math.ceil(remaining)}s left")
        step = min(STEP_S, remaining)
        sleep(step)
        remaining -= step
    return seconds
