"""The controller-side role object: turns item reports into results, files and tables.

It sees reports from every worker (pytest-xdist replays them on the controller), so there is
exactly one writer of the JSONL file and of the JSON report.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_llem.errors import LlemError
from pytest_llem.gate import baseline_file, explain, stability
from pytest_llem.gate.apply import Gate, limits_in_force, stability_rules
from pytest_llem.gate.settle import PairVerdict, Unsettled, decided_pairs, unsettled
from pytest_llem.gate.verdict import Verdict
from pytest_llem.gate.verdict import table as verdict_table
from pytest_llem.report import (
    bmf,
    document,
    exports,
    gate_notes,
    github,
    junit_suite,
    plots,
    terminal,
)
from pytest_llem.report.final import finalize
from pytest_llem.report.junit import gate_properties
from pytest_llem.results.records import ExperimentResult, Outcome, append_jsonl, write_json_atomic
from pytest_llem.results.redact import redact
from pytest_llem.settings.resolve import Settings
from pytest_llem.study.sections import GateConfig

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
        self._attempts: dict[str, int] = {}
        self._rerun_ended: set[str] = set()
        self.jsonl_path = settings.results_dir / "results.jsonl"
        self.workers: list[dict[str, Any]] = []
        self.model_loads = 0  # summed over every process's summary
        self.model_load_s = 0.0
        self.notes: list[str] = []
        self.plots: list[Path] = []
        self.study_gates: dict[str, dict[str, Any]] = {}
        self.ran: list[str] = []  # every attempt's nodeid, in the order they finished
        self.orders: list[dict[str, Any]] = []  # each process's order record (ordering.py)
        self.unsettled: list[Unsettled] = []  # gated configs no item decided (gate/settle.py)
        self.pairs: list[PairVerdict] = []  # A/B pairs' final verdicts, reported as [ab]
        self.planning: dict[str, dict[str, Any]] = {}  # per study: estimate, detectable change
        self.refused_save: str | None = None  # why --llem-save-baseline saved nothing
        self._clock_start = time.monotonic()

    # -- hooks (this object is registered as a plugin) -----------------------------------

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Track the phases of an item; on teardown, finalise and append its result."""
        identity = getattr(report, "llem_item", None)
        if identity is None:
            self._crashed(report)
            return
        if report.nodeid in self._rerun_ended:
            # The attempt before was repeated and is already recorded: its teardown (which
            # pytest-rerunfailures may or may not log) belongs to it, not to a new attempt.
            self._rerun_ended.discard(report.nodeid)
            if report.when == "teardown":
                return
        state = self._pending.setdefault(report.nodeid, {"identity": identity})
        state.setdefault("nodeid", report.nodeid)
        measurement = getattr(report, "llem_measurement", None)
        if measurement is not None:
            state["measurement"] = measurement
        interrupted = getattr(report, "llem_interrupted", None)
        if interrupted is not None:
            state["interrupted"] = interrupted
        suite_properties = getattr(report, "llem_suite_properties", None)
        if suite_properties is not None and _outcome(report) != "rerun":
            junit_suite.add(self.config, report.nodeid, suite_properties)
        if _outcome(report) == "rerun":
            # pytest-rerunfailures logs no teardown for an attempt it repeats: the attempt ends
            # here, and the next one starts with a fresh setup report.
            state["outcome"] = "rerun"
            state.update(_message(report))
            self._finish(report.nodeid, self._pending.pop(report.nodeid))
            self._rerun_ended.add(report.nodeid)
        elif report.when == "setup" and report.outcome != "passed":
            state["outcome"] = _outcome(report, failed="error")
            state.update(_message(report))
        elif report.when == "call":
            state["outcome"] = _outcome(report)
            if report.outcome != "passed":
                state.update(_message(report))
        elif report.when == "teardown":
            if report.failed and state.get("outcome") == "passed":
                state["outcome"] = "error"
                state.update(_message(report))
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
        state["outcome"] = "error"
        state.update(_message(report))
        state["message"] = state["message"] or "worker crashed"
        self._finish(state["nodeid"], state)

    def _finish(self, nodeid: str, state: dict[str, Any]) -> None:
        identity = state["identity"]
        self.study_gates.setdefault(identity["study_hash"], identity.get("study_gate") or {})
        outcome: Outcome = state.get("outcome", "error")
        self._attempts[nodeid] = self._attempts.get(nodeid, 0) + 1
        self.ran.append(nodeid)
        result = ExperimentResult(
            nodeid=nodeid,
            outcome=outcome,
            attempt=self._attempts[nodeid],
            study=identity["study"],
            study_hash=identity["study_hash"],
            point_id=identity["point_id"],
            config_hash=identity["config_hash"],
            cycle=identity["cycle"],
            n_cycles=identity.get("n_cycles"),
            arm=identity.get("arm"),
            pair=identity.get("pair"),
            config=identity["config"],
            study_file=identity.get("study_file"),
            line=identity.get("line"),
            message=state.get("message"),
            traceback=state.get("traceback"),
            interrupted=state.get("interrupted"),
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
        if summary.get("order") is not None:
            self.orders.append(summary["order"])
        for record in summary.get("planning") or []:
            self.planning.setdefault(record["study_hash"], record)  # every worker plans alike
        for note in summary.get("notes", []):
            if note not in self.notes:  # every xdist worker may say the same
                self.notes.append(note)
        self.model_loads += int(summary.get("model_loads") or 0)
        self.model_load_s += float(summary.get("model_load_s") or 0.0)

    def settle(self, session: pytest.Session, interrupted: bool = False) -> None:
        """After the last item: a gated config that no item decided on all its cycles is
        inconclusive. Under ``--llem-inconclusive fail`` it fails as a test of its own
        (``<study>::<point>[gate]``), so the terminal, JUnit and the exit status agree."""
        found = unsettled(self.results, self._gated, interrupted)
        self.unsettled.extend(found)
        self.pairs = [] if interrupted else decided_pairs(self.results)
        reports = [_pair_report(p, self.settings.inconclusive) for p in self.pairs]
        if self.settings.inconclusive != "warn" and not interrupted:
            reports += [_gate_report(entry) for entry in found]
        # Counted as tests, so the progress reads 100% rather than beyond it.
        session.testscollected += len(reports)
        for report in reports:
            self.config.hook.pytest_runtest_logreport(report=report)

    def _gated(self, study_hash: str) -> bool:
        """Relative limits were in force for the study (a baseline was being compared)."""
        if not self.settings.compare:
            return False
        study = GateConfig.model_validate(self.study_gates.get(study_hash) or {})
        s = self.settings
        chosen = limits_in_force(s.fail_on_cli, s.fail_on_ini, study, comparing=True)
        return any(limit.kind == "relative" for limit in chosen)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Write the JSON report and the optional outputs (baseline, plots, BMF, summary)."""
        if not self.results:
            return
        if exitstatus == pytest.ExitCode.INTERRUPTED and not self.unsettled:
            self.settle(session, interrupted=True)  # listed in the report, not failed twice
        settings = self.settings
        if settings.save_baseline and not self._save_baseline(settings.save_baseline):
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            exitstatus = session.exitstatus
        self.write_report(int(exitstatus))
        if settings.plot_dir is not None:
            try:
                self.plots = plots.write(self.results, settings.plot_dir)
                self.notes.extend(f"plot: {p}" for p in self.plots)
            except LlemError as exc:
                self.notes.append(f"plots not written: {exc}")
        if settings.bmf_path is not None:
            write_json_atomic(settings.bmf_path, bmf.document(self.results))
            self.notes.append(f"Bencher Metric Format: {settings.bmf_path}")
        for kind, target in settings.exports:
            self.notes.append(exports.write(kind, self.results, target))
        summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary_file:
            notes = gate_notes.lines(self.results, self.unsettled, settings.inconclusive)
            with open(summary_file, "a", encoding="utf-8") as handle:
                handle.write(github.summary_markdown(self.final(), self.plots, notes))

    def final(self) -> list[ExperimentResult]:
        """The results with every cycle showing its config's (or pair's) final verdict."""
        return finalize(self.results, self.unsettled, self.pairs)

    def _save_baseline(self, name: str) -> bool:
        """Store the baseline unless some config is unstable (and not forced); say which."""
        built = baseline_file.build(name, self.results)
        s = self.settings
        rules = stability_rules(
            Gate(cli=s.fail_on_cli, ini=s.fail_on_ini, max_cv=s.max_cv),
            self.results,
            self.study_gates,
        )
        refused = stability.refusals(built.entries, rules)
        target = baseline_file.resolve(name, s.baseline_dir)
        disturbed = stability.disturbed_refusals(self.results)
        if disturbed and not s.save_baseline_force:
            self.notes.append(
                stability.disturbed_note(name, disturbed, "--llem-save-baseline-force")
            )
            self.refused_save = f"{len(disturbed)} config(s) have disturbed cycles (listed above)"
            return False
        if refused and not s.save_baseline_force:
            self.notes.append(stability.refusal_note(name, refused, "--llem-save-baseline-force"))
            self.refused_save = (
                f"{len(refused)} config(s) vary beyond their stability limit (listed above)"
            )
            return False
        try:
            baseline_file.save(target, built)
        except baseline_file.BaselineError as exc:
            self.notes.append(f"baseline {name!r} NOT saved: {exc}")
            self.refused_save = str(exc).splitlines()[0]
            return False
        self.notes.append(f"baseline {name!r} saved: {target}")
        self.notes.extend(f"  saved although unstable: {line}" for line in refused)
        self.notes.extend(f"  saved although disturbed: {line}" for line in disturbed)
        return True

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        """Print the per-study tables, then GitHub annotations when running in Actions."""
        if not self.results:
            for note in self.notes:
                terminalreporter.write_line(note)
            return
        others = self.settings.others
        junit_note = junit_suite.xunit2_note(
            others.junit_family, self.settings.junit_properties, others.junitxml
        )
        for extra in [junit_note, *self._selection_notes()]:
            if extra is not None and extra not in self.notes:
                self.notes.append(extra)
        terminalreporter.section("llem results")
        for line in terminal.summary_lines(self.final(), self.pairs, self.settings.inconclusive):
            terminalreporter.write_line(line)
        for line in gate_notes.lines(self.results, self.unsettled, self.settings.inconclusive):
            terminalreporter.write_line(line, yellow=True)
        terminalreporter.write_line(
            f"model loads: {self.model_loads} ({self.model_load_s:.1f} s loading)"
        )
        terminalreporter.write_line(f"results: {self.jsonl_path}")
        terminalreporter.write_line(f"report:  {self.settings.json_path}")
        for note in self.notes:
            terminalreporter.write_line(note)
        if self.refused_save is not None:
            self._refused_save_line(terminalreporter, self.refused_save)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            for line in github.workflow_commands(self.results, self.settings.rootdir):
                terminalreporter.write_line(line)
            for line in github.unsettled_commands(self.unsettled, self.settings.rootdir):
                terminalreporter.write_line(line)

    def _refused_save_line(self, terminalreporter: pytest.TerminalReporter, why: str) -> None:
        """The last line of the section, and a count on pytest's own final line: every item
        may have passed, yet the session exits 1 because the baseline was not saved."""
        name = self.settings.save_baseline
        terminalreporter.write_line(
            f"exit code 1: baseline {name!r} was NOT saved ({why}); the items themselves "
            "passed or failed as shown",
            red=True,
            bold=True,
        )
        # pytest lists unknown stats keys on its final line ("4 passed, 1 baseline not saved").
        terminalreporter.stats.setdefault("baseline not saved", []).append(name)

    def _selection_notes(self) -> list[str]:
        """Say so when every study item was skipped by a selection flag or a plugin."""
        skipped = [r for r in self.results if r.outcome == "skipped"]
        if not skipped or len(skipped) < len(self.results):
            return []
        reasons = sorted({r.message or "no reason given" for r in skipped})
        line = (
            f"pytest-llem: all {len(skipped)} study items were skipped, nothing was measured "
            f"(reason: {reasons[0]}{f' and {len(reasons) - 1} more' if len(reasons) > 1 else ''})"
        )
        if self.settings.others.benchmark_only:
            line += (
                "\n  --benchmark-only (pytest-benchmark) runs only tests that use its benchmark "
                "fixture; study items are measured by pytest-llem: run them without it"
            )
        return [line]

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
            "order": _order(self.orders, self.ran),
            "model_loads": self.model_loads,
            "model_load_s": round(self.model_load_s, 3),
            "estimated_s": round(sum(p["estimated_s"] for p in self.planning.values()), 1)
            if self.planning
            else None,
            "actual_s": round(time.monotonic() - self._clock_start, 1),
        }
        write_json_atomic(
            self.settings.json_path,
            document.build(self.final(), session, self.study_gates, self.unsettled, self.planning),
        )


def _outcome(report: pytest.TestReport, failed: Outcome = "failed") -> Outcome:
    """The report's outcome in the results' vocabulary, whatever plugin produced it.

    xfail keeps pytest's pair; pytest-rerunfailures reports ``rerun``; anything unknown is an
    error with the report's text rather than a crash that loses what was measured.
    """
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    if report.outcome == "failed":
        return failed
    if report.outcome in ("passed", "skipped", "rerun"):
        return report.outcome
    return "error"


def _message(report: pytest.TestReport) -> dict[str, str | None]:
    """A report's reason in one line (``message``) and its full text (``traceback``).

    The line is what a reader needs first: a skip's reason, the exception a failure ended
    with (pytest's crash line), or the first line of a domain error's own text.
    """
    if report.skipped and isinstance(report.longrepr, tuple):
        return {
            "message": redact(str(report.longrepr[2]).removeprefix("Skipped: ")),
            "traceback": None,
        }
    text = redact(report.longreprtext)
    # xdist heads a worker's failure text with "[gw0] linux -- Python ...": not the message.
    text = re.sub(r"\A\[gw\d+\] [^\n]*\n", "", text)
    crash = getattr(report.longrepr, "reprcrash", None)
    line = str(crash.message) if crash is not None else ""
    if not line:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        # A heading such as "pre-flight failed:" says little alone: its first point follows.
        line = (
            " ".join(lines[:2])
            if len(lines) > 1 and lines[0].endswith(":")
            else (lines[0] if lines else "")
        )
    line = redact(line.splitlines()[0] if line else "")
    trace = text[-20000:] if len(text) > 20000 else text
    return {"message": line[:600], "traceback": trace or None}


def _order(records: list[dict[str, Any]], ran: list[str]) -> dict[str, Any]:
    """The run's order: what ran (finish order), whether each process kept the study's
    cycle_order, which plugins reordered it and with which seed."""
    return {
        "study_order": all(r["study_order"] for r in records),
        "reordered_by": sorted({name for r in records for name in r["reordered_by"]}),
        "seed": next((r["seed"] for r in records if r["seed"] is not None), None),
        "ran": ran,
    }


def _pair_report(pair: PairVerdict, policy: str) -> pytest.TestReport:
    """The A/B pair's verdict as a test of its own (``<study>::<pair>[ab]``): the pair passes
    or fails, never one of its arms."""
    verdict = Verdict.model_validate({**pair.verdict, "inconclusive": policy})
    path = pair.study_file or pair.nodeid.split("::", 1)[0]
    text = (
        explain.headline(pair.pair, None, verdict)
        + "\n"
        + verdict_table(verdict)
        + f"\n  fix: {explain.fix(verdict)}"
    )
    return pytest.TestReport(
        nodeid=pair.nodeid,
        location=(path, (pair.line or 1) - 1, pair.nodeid.rsplit("::", 1)[-1]),
        keywords={"llem": 1},
        outcome="failed" if verdict.failed else "passed",
        longrepr=text if verdict.failed else None,
        when="call",
        user_properties=[*gate_properties(verdict), ("llem.decided_by", pair.decided_by)],
    )


def _gate_report(entry: Unsettled) -> pytest.TestReport:
    """A failed report for a config that no item decided (see ``Reporter.settle``)."""
    path = entry.study_file or entry.nodeid.split("::", 1)[0]
    return pytest.TestReport(
        nodeid=entry.nodeid,
        location=(path, (entry.line or 1) - 1, entry.nodeid.rsplit("::", 1)[-1]),
        keywords={"llem": 1},
        outcome="failed",
        longrepr=entry.message()
        + "\n  fix: run every cycle of the config in one session and fix what stopped the "
        "others; --llem-inconclusive warn reports this without failing it",
        when="call",
        user_properties=[("llem.gate", "inconclusive")],
    )
