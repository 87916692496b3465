"""Converters for option and ini values: each raises ``pytest.UsageError`` naming the value."""

from __future__ import annotations

import pytest

from pytest_llem.gate.thresholds import Limit, LimitSyntaxError, parse_fail_on
from pytest_llem.runners.selection import parse_cli
from pytest_llem.study.sections import AB_ARMS, parse_runner_value, percent

ENERGY_CHOICES = ("auto", "nvml", "zeus", "rapl", "null")
# What --llem-export writes: github-benchmark (a directory: github-action-benchmark's custom
# JSON, one file per direction) and bmf (a file: Bencher Metric Format).
EXPORT_KINDS = ("github-benchmark", "bmf")


def _integer(text: str, minimum: int, wording: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise pytest.UsageError(f"expected {wording}, got {text!r}") from None
    if value < minimum:
        raise pytest.UsageError(f"expected {wording}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _integer(text, 1, "a positive integer")


def non_negative_int(text: str) -> int:
    return _integer(text, 0, "an integer >= 0")


def text(text: str) -> str:
    return text


def energy(text: str) -> str:
    if text not in ENERGY_CHOICES:
        raise pytest.UsageError(
            f"--llem-energy must be one of {list(ENERGY_CHOICES)}, got {text!r}"
        )
    return text


def shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise pytest.UsageError(f"--llem-shard expects K/N (e.g. 2/4), got {text!r}") from None
    if not 1 <= k <= n:
        raise pytest.UsageError(f"--llem-shard K/N needs 1 <= K <= N, got {text!r}")
    return k, n


def fail_on(text: str) -> tuple[Limit, ...]:
    try:
        return tuple(parse_fail_on(text))
    except LimitSyntaxError as exc:
        raise pytest.UsageError(f"--llem-fail-on / llem_fail_on: {exc}") from None


def strategy(text: str) -> str:
    if text not in ("ephemeral", "persistent"):
        raise pytest.UsageError(f"container strategy must be ephemeral or persistent, got {text!r}")
    return text


JUNIT_MODES = ("testcase", "suite")


def junit_mode(text: str) -> str:
    if text not in JUNIT_MODES:
        raise pytest.UsageError(f"junit properties must be testcase or suite, got {text!r}")
    return text


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise pytest.UsageError(f"expected a number, got {text!r}") from None


def positive_number(text: str) -> float:
    value = number(text)
    if not value > 0:  # also refuses nan
        raise pytest.UsageError(f"expected a positive number of seconds, got {text!r}")
    return value


def runner_cli(text: str) -> dict[str, str]:
    try:
        return parse_cli(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--llem-runner: {exc}") from None


def ab_runners(text: str) -> dict[str, str]:
    """``reference=RUNNER candidate=RUNNER`` (space or comma separated) into arm -> runner."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.replace(",", " ").split())):
        arm, sep, runner = part.partition("=")
        if not sep or arm not in AB_ARMS:
            raise pytest.UsageError(
                f"--llem-ab: {part!r}: expected reference=RUNNER or candidate=RUNNER"
            )
        try:
            parse_runner_value(runner)
        except ValueError as exc:
            raise pytest.UsageError(f"--llem-ab: {arm}: {exc}") from None
        out[arm] = runner
    if not out:
        raise pytest.UsageError("--llem-ab: give reference=RUNNER and/or candidate=RUNNER")
    return out


def runner_ini(text: str) -> str:
    try:
        parse_runner_value(text)
    except ValueError as exc:
        raise pytest.UsageError(f"llem_runner_*: {exc}") from None
    return text


def boolean(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise pytest.UsageError(f"expected a boolean, got {text!r}")


def inconclusive(text: str) -> str:
    if text not in ("fail", "warn"):
        raise pytest.UsageError(f"expected fail or warn, got {text!r}")
    return text


def percentage(text: str) -> float:
    try:
        return percent(text)
    except ValueError:
        message = f"expected a positive percentage such as 5%, got {text!r}"
        raise pytest.UsageError(message) from None


def exports(text: str) -> tuple[tuple[str, str], ...]:
    """``KIND=PATH[,KIND=PATH]`` into (kind, path) pairs, each kind of ``EXPORT_KINDS`` once."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, sep, target = (x.strip() for x in part.partition("="))
        if not sep or kind not in EXPORT_KINDS or not target:
            raise pytest.UsageError(
                f"--llem-export: {part!r}: expected KIND=PATH with KIND one of "
                f"{list(EXPORT_KINDS)} (e.g. github-benchmark=.llem/bench)"
            )
        if kind in out:
            raise pytest.UsageError(f"--llem-export: {kind} given twice")
        out[kind] = target
    if not out:
        raise pytest.UsageError("--llem-export: give KIND=PATH, e.g. github-benchmark=DIR")
    return tuple(out.items())


def on_disturbed(text: str) -> str:
    if text not in ("warn", "retry", "fail"):
        raise pytest.UsageError(f"expected warn, retry or fail, got {text!r}")
    return text
