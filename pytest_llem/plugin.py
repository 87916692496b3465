"""pytest-llem hooks. Each hook is a few lines that delegate to a module or role object."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from pytest_llem import hookspecs
from pytest_llem.engines.builtin import BUILTIN
from pytest_llem.harness import assemble, collect, device_state, fixtures, guard, ordering
from pytest_llem.harness import xdist as workers
from pytest_llem.harness.session import SESSION_KEY, LlemSession
from pytest_llem.report import html
from pytest_llem.report.reporter import REPORTER_KEY, Reporter
from pytest_llem.settings import resolve
from pytest_llem.study.backends import BackendSpec

SETTINGS_KEY = pytest.StashKey[resolve.Settings]()
SIGTERM_KEY = pytest.StashKey[object]()
CPU_NOTE_KEY = pytest.StashKey[bool]()


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _is_xdist_controller(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not _is_xdist_worker(config)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    resolve.add_options(parser)


def pytest_llem_backends() -> list[BackendSpec]:
    return list(BUILTIN)  # the built-in backends register like any other


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    workers.pin_worker_gpu(config)  # first: before anything can initialise CUDA
    backends = assemble.backends(config.hook.pytest_llem_backends())
    for marker in (*collect.MARKERS, *(spec.marker for spec in backends)):
        config.addinivalue_line("markers", marker)
    settings = resolve.resolve(config, backends)
    config.stash[SETTINGS_KEY] = settings
    config.pluginmanager.register(fixtures, "llem-fixtures")
    # In every process, the xdist controller included: a bad baseline is one usage error before
    # any worker starts, not a crash in each worker.
    gate = assemble.gate(settings)
    # Role objects carry the stateful hooks: the session runs items (every process that runs
    # tests), the reporter writes results (the one process that sees every report).
    if not _is_xdist_controller(config):
        config.stash[SESSION_KEY] = LlemSession(
            config, settings, gate, assemble.resume(config, settings)
        )
        config.pluginmanager.register(config.stash[SESSION_KEY], "llem-session")
        config.pluginmanager.register(ordering.OrderCheck(), "llem-order")
    config.stash[SIGTERM_KEY] = guard.install_sigterm()
    if not _is_xdist_worker(config):
        config.stash[REPORTER_KEY] = Reporter(config, settings)
        config.pluginmanager.register(config.stash[REPORTER_KEY], "llem-reporter")


def pytest_unconfigure(config: pytest.Config) -> None:
    guard.restore_sigterm(config.stash.get(SIGTERM_KEY, None))


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    settings = parent.config.stash[SETTINGS_KEY]
    if collect.is_study_file(file_path, settings):
        return collect.StudyFile.from_parent(parent, path=file_path, settings=settings)
    return None


def pytest_report_collectionfinish(config: pytest.Config) -> list[str]:
    lines: list[str] = []
    for plan in config.stash.get(collect.PLANS_KEY, []):
        lines.append(plan.header())
        loads = plan.loads_line()
        if loads:
            lines.append(loads)
        settings = config.stash[SETTINGS_KEY]
        ab = plan.ab_line(plan.ab is not None and plan.ab.shares_process(settings.ab_cli))
        if ab:
            lines.append(ab)
        lines.extend(f"  note: {note}" for note in plan.notes)
        llem = config.stash.get(SESSION_KEY, None)
        if llem is not None:
            lines.extend(llem.plan_lines.get(str(plan.path), []))
    if not config.getoption("collectonly"):  # the devices' state, with fixes (pre-flight)
        lines.extend(device_state.lines(config.stash.get(collect.PLANS_KEY, [])))
    return lines


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    # Outermost wrapper: runs before pytest-timeout's wrapper starts the item's timer.
    if isinstance(item, collect.ExperimentItem):
        item.prepare()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    result = yield
    # Every item has ended (every xdist worker too): a gated config that no item decided on
    # all its cycles fails here, as a test of its own, before the exit status is set.
    reporter = session.config.stash.get(REPORTER_KEY, None)
    if reporter is not None:
        reporter.settle(session)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if isinstance(item, collect.ExperimentItem):
        # Plain data attributes survive pytest-xdist's report serialisation.
        report.llem_item = item.identity()  # type: ignore[attr-defined]
        llem = item.config.stash.get(SESSION_KEY, None)
        if call.when == "call" and call.excinfo is not None and llem is not None:
            cut = llem.interrupted
            if cut is not None:  # where the item was when it ended: travels to the report
                report.llem_interrupted = {  # type: ignore[attr-defined]
                    "phase": cut.phase,
                    "detail": cut.detail,
                    "after_s": round(cut.item_s, 3),
                }
        if call.when == "call" and collect.MEASUREMENT_KEY in item.stash:
            report.llem_measurement = item.stash[collect.MEASUREMENT_KEY]  # type: ignore[attr-defined]
            props = item.stash.get(collect.SUITE_PROPERTIES_KEY, None)
            if props is not None:
                report.llem_suite_properties = props  # type: ignore[attr-defined]
    return report


@pytest.hookimpl(tryfirst=True)  # before the terminal asks for the collection header
def pytest_collection_finish(session: pytest.Session) -> None:
    llem = session.config.stash.get(SESSION_KEY, None)
    if llem is not None:  # the gate learns which cycles of each config this session runs
        llem.expect(i.ref for i in session.items if isinstance(i, collect.ExperimentItem))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    assemble.select_shard(config, config.stash[SETTINGS_KEY], items)
    if not _is_xdist_worker(config) and any(isinstance(i, collect.ExperimentItem) for i in items):
        guard.results_dir_or_exit(config, config.stash[SETTINGS_KEY].results_dir)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    config: pytest.Config = node.config  # type: ignore[attr-defined]
    settings = config.stash[SETTINGS_KEY]
    if any(collect.is_study_file(Path(i.split("::", 1)[0]), settings) for i in ids):
        problem = workers.cycle_split_problem(settings.xdist_dist, ids, settings.study_patterns)
        if problem is not None:
            pytest.exit(f"pytest-llem: {problem}", returncode=pytest.ExitCode.USAGE_ERROR)
        guard.results_dir_or_exit(config, settings.results_dir)
        _once_cpu_sharing_note(config, settings, ids)


def _once_cpu_sharing_note(
    config: pytest.Config, settings: resolve.Settings, ids: list[str]
) -> None:
    if config.stash.get(CPU_NOTE_KEY, False):
        return
    config.stash[CPU_NOTE_KEY] = True
    cpu_ids = workers.cpu_item_ids(
        ids, settings.study_patterns, settings.rootdir, settings.backends
    )
    note = workers.cpu_sharing_note(settings.xdist_workers, cpu_ids)
    if note is not None:
        config.stash[REPORTER_KEY].notes.append(note)
        writer = config.pluginmanager.get_plugin("terminalreporter")
        if writer is not None:
            writer.write_line(note, yellow=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    # One session id across the run: results, reports and container labels all carry it.
    workerinput: dict[str, object] = node.workerinput  # type: ignore[attr-defined]
    config: pytest.Config = node.config  # type: ignore[attr-defined]
    workerinput[resolve.SESSION_ID_KEY] = config.stash[SETTINGS_KEY].session_id


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    return workers.auto_workers()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    settings = config.stash[SETTINGS_KEY]
    return workers.make_scheduler(config, log, settings.xdist_dist, settings.study_patterns)


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list[str]) -> None:
    html.header(cells)


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    html.row(report, cells)


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_html(report: pytest.TestReport, data: list[str]) -> None:
    html.details(report, data)
