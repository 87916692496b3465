"""Per-item timeouts (pytest-timeout) against model loads: say so instead of failing later.

pytest-timeout's timer covers an item's setup, call and teardown, so the model load counts.
pytest-llem imports what the load needs before the timer starts (``LlemSession.prepare``), and
these texts say when a timeout is shorter than a load, instead of leaving the user to guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SHORT_FIX = "; fix: raise the item timeout (execution.timeout_s, ini llem_item_timeout, --timeout)"
FIX = (
    "  fix: raise the timeout above the model load time (--timeout, the timeout marker, "
    "execution.timeout_s or ini llem_item_timeout)"
)


def marker_timeout(args: Sequence[object], kwargs: Mapping[str, object]) -> float | None:
    """The seconds of a ``timeout`` marker (first argument or ``timeout=``), if any."""
    value = args[0] if args else kwargs.get("timeout")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def too_short(timeout_s: float | None, longest_load_s: float | None) -> str | None:
    """Advice when the timeout is not longer than a model load seen in this session."""
    if timeout_s is None or timeout_s <= 0 or longest_load_s is None:
        return None
    if timeout_s > longest_load_s:
        return None
    return (
        f"pytest-llem: the per-item timeout ({timeout_s:g}s) counts the model load, and a "
        f"load in this session took at least {longest_load_s:.1f}s: items that load a model "
        f"will time out\n{FIX}"
    )


def is_timeout(exc: BaseException) -> bool:
    """True for pytest-timeout's failure (``Failed: Timeout (>Ns) from pytest-timeout``)."""
    return type(exc).__name__ == "Failed" and "Timeout" in str(exc)


def load_cut_explanation() -> str:
    """Appended to the failure of an item whose timeout fired while it loaded its model."""
    return (
        "pytest-llem: the item timed out while loading its model (the per-item timeout counts "
        "the load; later items are not affected: their imports were done before the timer)\n" + FIX
    )


def load_cut_note(nodeids: Sequence[str], longest_load_s: float | None) -> str:
    """The summary line for items interrupted during their model load."""
    seen = f" (the longest had run {longest_load_s:.1f}s)" if longest_load_s is not None else ""
    return (
        f"pytest-llem: {len(nodeids)} item(s) timed out while loading their model{seen}, "
        f"e.g. {nodeids[0]}\n{FIX}"
    )
