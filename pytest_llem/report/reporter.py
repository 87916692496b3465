"""The controller-side role object: turns item reports into results, files and tables.

It sees reports from every worker (pytest-xdist replays them on the controller), so there is
exactly one writer of the JSONL file and of the JSON report.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.errors import LlemError
from pytest_llem.gate import baseline
from pytest_llem.options import Settings
from pytest_llem.report import bmf, document, github, plots, terminal
from pytest_llem.results import ExperimentResult, Outcome, append_jsonl, write_json_atomic
from pytest_llem.secrets import redact

REPORTER_KEY = pytest.StashKey["Reporter"]()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class Reporter:
    """Collects one ExperimentResult per finished item and writes them out."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.session_id = settings.session_id
        self.started_at = _now()
        self.results: list[ExperimentResult] = []
        self._pending: dict[str, dict[str, Any]] = {}
        self.jsonl_path = settings.results_dir / "results.jsonl"
        self.workers: list[dict[str, Any]] = []
        self.model_loads = 0  # summed over every process's summary
        self.model_load_s = 0.0
        self.notes: list[str] = []
        self.plots: list[Path] = []
        self.study_gates: dict[str, dict[str, Any]] = {}

    # -- hooks (this object is registered as a plugin) -----------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Track the phases of an item; on teardown, finalise and append its result."""
        identity = getattr(report, "llem_item", None)
        if identity is None:
            self._crashed(report)
            return
        state = self._pending.setdefault(report.nodeid, {"identity": identity})
        state.setdefault("nodeid", report.nodeid)
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
            state = self._pending.pop(report.nodeid)
            self._finish(state["nodeid"], state)

    def _crashed(self, report: pytest.TestReport) -> None:
        """An xdist worker died under an item: xdist reports it with ``when="???"``.

        The item's setup report (with its identity) usually arrived first; finish it as an
        error so the report stays complete and the session carries on.
        """
        state = self._pending.pop(report.nodeid, None)
        if state is None or report.when in ("setup", "call", "teardown"):
            return
        state["outcome"], state["message"] = "error", _message(report) or "worker crashed"
        self._finish(state["nodeid"], state)

    def _finish(self, nodeid: str, state: dict[str, Any]) -> None:
        identity = state["identity"]
        self.study_gates.setdefault(identity["study_hash"], identity.get("study_gate") or {})
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
            study_file=identity.get("study_file"),
            line=identity.get("line"),
            message=state.get("message"),
            session_id=self.session_id,
            **state.get("measurement", {}),
        )
        # A retried item (xdist re-runs one whose worker crashed) keeps its latest entry in
        # the report; the JSONL keeps every attempt, as a log.
        self.results = [r for r in self.results if r.nodeid != nodeid]
        self.results.append(result)
        append_jsonl(self.jsonl_path, result)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        """Pass each xdist worker's summary (sent through ``workeroutput``) on, as one would
        be sent in a single-process run."""
        summary = getattr(node, "workeroutput", {}).get("llem")
        if summary is not None:
            self.config.hook.pytest_llem_worker_summary(config=self.config, summary=summary)

    def pytest_llem_worker_summary(self, summary: dict[str, Any]) -> None:
        """Keep a process's summary for the report and its notes for the terminal."""
        if summary.get("worker") != "main":
            self.workers.append(summary)  # the report lists xdist workers only, as before
        self.notes.extend(summary.get("notes", []))
        self.model_loads += int(summary.get("model_loads") or 0)
        self.model_load_s += float(summary.get("model_load_s") or 0.0)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Write the JSON report and the optional outputs (baseline, plots, BMF, summary)."""
        if not self.results:
            return
        self.write_report(int(exitstatus))
        settings = self.settings
        if settings.save_baseline:
            target = baseline.resolve(settings.save_baseline, settings.baseline_dir)
            baseline.save(target, baseline.build(settings.save_baseline, self.results))
            self.notes.append(f"baseline {settings.save_baseline!r} saved: {target}")
        if settings.plot_dir is not None:
            try:
                self.plots = plots.write(self.results, settings.plot_dir)
                self.notes.extend(f"plot: {p}" for p in self.plots)
            except LlemError as exc:
                self.notes.append(f"plots not written: {exc}")
        if settings.bmf_path is not None:
            write_json_atomic(settings.bmf_path, bmf.document(self.results))
            self.notes.append(f"Bencher Metric Format: {settings.bmf_path}")
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_file:
            with open(summary_file, "a", encoding="utf-8") as handle:
                handle.write(github.summary_markdown(self.results, self.plots))

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the per-study tables, then GitHub annotations when running in Actions."""
        if not self.results:
            for note in self.notes:
                terminalreporter.write_line(note)
            return
        terminalreporter.section("llem results")
        for line in terminal.summary_lines(self.results):
            terminalreporter.write_line(line)
        terminalreporter.write_line(
            f"model loads: {self.model_loads} ({self.model_load_s:.1f} s loading)"
        )
        terminalreporter.write_line(f"results: {self.jsonl_path}")
        terminalreporter.write_line(f"report:  {self.settings.json_path}")
        for note in self.notes:
            terminalreporter.write_line(note)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            for line in github.workflow_commands(self.results, self.settings.rootdir):
                terminalreporter.write_line(line)

    def write_report(self, exitstatus: int) -> None:
        """Write the JSON report atomically (called once, at session end)."""
        session = {
            "id": self.session_id,
            "started_at": self.started_at,
            "finished_at": _now(),
            "exitstatus": exitstatus,
            "status": "interrupted" if exitstatus == 2 else "complete",
            "host": platform.node(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "pid": os.getpid(),
            "args": list(self.config.invocation_params.args),
            "results_jsonl": str(self.jsonl_path),
            "baseline": self.settings.compare,
            "shard": list(self.settings.shard) if self.settings.shard else None,
            "workers": self.workers,
            "model_loads": self.model_loads,
            "model_load_s": round(self.model_load_s, 3),
        }
        write_json_atomic(
            self.settings.json_path, document.build(self.results, session, self.study_gates)
        )


def _message(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return redact(str(report.longrepr[2]).removeprefix("Skipped: "))
    text = redact(report.longreprtext)
    return text[-4000:] if len(text) > 4000 else text
