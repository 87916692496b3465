"""What makes a serving run's figures doubtful, as ``(name, message)`` findings (pure).

Each finding names the number, its bound and a way out: a window shorter than the energy
counter needs, a rate more than 5% below its target, requests that failed, a batch less than
80% full, a KV cache at its limit, a run cut short.
"""

from __future__ import annotations

from collections.abc import Mapping

from pytest_llem.serving.records import LoadRun
from pytest_llem.serving.window import NoWindow, Window

Finding = tuple[str, str]


def validity(
    run: LoadRun,
    window: Window | NoWindow | None,
    figures: Mapping[str, float | None],
    *,
    min_window_s: float = 0.0,
    cap: int | None = None,
    rate_tolerance: float = 0.05,
    occupancy_floor: float = 0.8,
    kv_full: float = 0.99,
) -> list[Finding]:
    """The findings on one run (empty: nothing to flag).

    Args:
        run: the recorded run.
        window: its window, or why it has none.
        figures: ``window.metrics(run, window, ...)``.
        min_window_s: the shortest window the energy source reads well.
        cap: the batch the server should hold (``max_num_seqs`` or the concurrency cap);
            None skips the occupancy check.
        rate_tolerance: how far below the target rate the achieved rate may fall.
        occupancy_floor: the fraction of ``cap`` the mean batch should reach.
        kv_full: the KV-cache usage (fraction) taken as saturated.
    """
    found: list[Finding] = []
    if isinstance(window, NoWindow):
        found.append(("no_window", f"{window.reason}; fix: {window.fix}"))
    steady = figures.get("steady_state_s")
    if steady is not None and steady < min_window_s:
        found.append((
            "short_window",
            f"the steady-state window lasted {steady:.3f} s, under the {min_window_s:g} s the "
            "energy counter needs; fix: send more requests",
        ))  # fmt: skip
    found += _rate(figures, rate_tolerance, run.concurrency)
    found += _errors(run)
    found += _occupancy(figures, cap, occupancy_floor)
    kv_max = figures.get("kv_cache_max")
    if kv_max is not None and kv_max >= kv_full:
        found.append((
            "kv_cache_saturated",
            f"KV-cache usage reached {kv_max:.0%} in the window, so the server preempts or queues"
            " requests; fix: fewer concurrent requests or shorter sequences",
        ))  # fmt: skip
    if run.stopped is not None:
        unsent = sum(1 for r in run.records if r.send_s is None)
        found.append(("stopped_early", f"the run stopped ({run.stopped}); {unsent} never sent"))
    return found


def _rate(
    figures: Mapping[str, float | None], tolerance: float, concurrency: int | None
) -> list[Finding]:
    target, achieved = figures.get("target_rate"), figures.get("achieved_rate")
    if target is None or achieved is None or achieved >= target * (1.0 - tolerance):
        return []
    why = (
        f"the concurrency cap of {concurrency} held requests back"
        if concurrency is not None
        else "the client fell behind its schedule"
    )
    return [(
        "rate_below_target",
        f"achieved {achieved:.3g} requests/s, {1 - achieved / target:.1%} below the target "
        f"{target:.3g} (more than {tolerance:.0%}): {why}",
    )]  # fmt: skip


def _errors(run: LoadRun) -> list[Finding]:
    failed = [r for r in run.errored if not r.cancelled]
    if not failed:
        return []
    return [(
        "errored_requests",
        f"{len(failed)} of {len(run.sent)} requests sent errored; the first "
        f"(request {failed[0].index}): {failed[0].error}",
    )]  # fmt: skip


def _occupancy(figures: Mapping[str, float | None], cap: int | None, floor: float) -> list[Finding]:
    if cap is None:
        return []
    running = figures.get("running_mean")
    source = "requests running on the server"
    if running is None:
        running = figures.get("in_flight_mean")
        source = "requests in flight seen by the client (the server's gauge was not scraped)"
    if running is None or running >= floor * cap:
        return []
    return [(
        "low_occupancy",
        f"mean {running:.3g} {source} in the window, below {floor:.0%} of the batch of {cap}; "
        "fix: a higher rate or more concurrency, or a smaller max_num_seqs",
    )]  # fmt: skip
