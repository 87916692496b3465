"""The controller-side role object: turns item reports into results, files and tables.

It sees reports from every worker (pytest-xdist replays them on the controller), so there is
exactly one writer of the JSONL file and of the JSON report.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import uuid
from typing import Any

import pytest

from pytest_llem.options import Settings
from pytest_llem.report import terminal
from pytest_llem.results import ExperimentResult, Outcome, append_jsonl, write_json_atomic

REPORTER_KEY = pytest.StashKey["Reporter"]()
REPORT_VERSION = 1


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Reporter:
    """Collects one ExperimentResult per finished item and writes them out."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.session_id = (
            f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
        )
        self.started_at = _now()
        self.results: list[ExperimentResult] = []
        self._pending: dict[str, dict[str, Any]] = {}
        self.jsonl_path = settings.results_dir / "results.jsonl"

    # -- hooks (this object is registered as a plugin) -----------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Track the phases of an item; on teardown, finalise and append its result."""
        identity = getattr(report, "llem_item", None)
        if identity is None:
            return
        state = self._pending.setdefault(report.nodeid, {"identity": identity})
        measurement = getattr(report, "llem_measurement", None)
        if measurement is not None:
            state["measurement"] = measurement
        if report.when == "setup" and report.outcome != "passed":
            state["outcome"] = "skipped" if report.skipped else "error"
            state["message"] = _message(report)
        elif report.when == "call":
            state["outcome"] = report.outcome
            if report.outcome != "passed":
                state["message"] = _message(report)
        elif report.when == "teardown":
            if report.failed and state.get("outcome") == "passed":
                state["outcome"], state["message"] = "error", _message(report)
            self._finish(report.nodeid, self._pending.pop(report.nodeid))

    def _finish(self, nodeid: str, state: dict[str, Any]) -> None:
        identity = state["identity"]
        outcome: Outcome = state.get("outcome", "error")
        result = ExperimentResult(
            nodeid=nodeid,
            outcome=outcome,
            study=identity["study"],
            study_hash=identity["study_hash"],
            point_id=identity["point_id"],
            config_hash=identity["config_hash"],
            cycle=identity["cycle"],
            config=identity["config"],
            message=state.get("message"),
            session_id=self.session_id,
            **state.get("measurement", {}),
        )
        self.results.append(result)
        append_jsonl(self.jsonl_path, result)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Write the JSON report when any item ran."""
        if self.results:
            self.write_report(int(exitstatus))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the per-study tables."""
        if not self.results:
            return
        terminalreporter.section("llem results")
        for line in terminal.summary_lines(self.results):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"results: {self.jsonl_path}")
        terminalreporter.write_line(f"report:  {self.settings.json_path}")

    def write_report(self, exitstatus: int) -> None:
        """Write the JSON report atomically (called once, at session end)."""
        studies: dict[str, dict[str, Any]] = {}
        for result in self.results:
            entry = studies.setdefault(
                result.study_hash,
                {"name": result.study, "study_hash": result.study_hash, "items": 0},
            )
            entry["items"] += 1
        counts: dict[str, int] = {}
        for result in self.results:
            counts[result.outcome] = counts.get(result.outcome, 0) + 1
        document = {
            "report_version": REPORT_VERSION,
            "session": {
                "id": self.session_id,
                "started_at": self.started_at,
                "finished_at": _now(),
                "exitstatus": int(exitstatus),
                "status": "interrupted" if int(exitstatus) == 2 else "complete",
                "host": platform.node(),
                "platform": platform.platform(),
                "python": platform.python_version(),
                "pid": os.getpid(),
                "args": list(self.config.invocation_params.args),
                "counts": counts,
                "results_jsonl": str(self.jsonl_path),
            },
            "study": list(studies.values()),
            "items": [r.model_dump(mode="json") for r in self.results],
        }
        write_json_atomic(self.settings.json_path, document)


def _message(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    text = report.longreprtext
    return text[-4000:] if len(text) > 4000 else text
