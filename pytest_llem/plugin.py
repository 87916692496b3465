"""pytest-llem hooks. Each hook is a few lines that delegate to a module or role object."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from pytest_llem import collect, fixtures, guard, hookspecs, options, setup, workers
from pytest_llem.report.reporter import REPORTER_KEY, Reporter
from pytest_llem.session import SESSION_KEY, LlemSession

SETTINGS_KEY = pytest.StashKey[options.Settings]()
SIGTERM_KEY = pytest.StashKey[object]()


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _is_xdist_controller(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not _is_xdist_worker(config)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    workers.pin_worker_gpu(config)  # first: before anything can initialise CUDA
    for marker in collect.MARKERS:
        config.addinivalue_line("markers", marker)
    settings = options.resolve(config)
    config.stash[SETTINGS_KEY] = settings
    config.pluginmanager.register(fixtures, "llem-fixtures")
    # Role objects carry the stateful hooks: the session runs items (every process that runs
    # tests), the reporter writes results (the one process that sees every report).
    if not _is_xdist_controller(config):
        config.stash[SESSION_KEY] = LlemSession(
            config, settings, setup.gate(settings), setup.resume(config, settings)
        )
        config.pluginmanager.register(config.stash[SESSION_KEY], "llem-session")
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
    plans = config.stash.get(collect.PLANS_KEY, [])
    return [line for plan in plans for line in (plan.header(), plan.loads_line()) if line]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if isinstance(item, collect.ExperimentItem):
        # Plain data attributes survive pytest-xdist's report serialisation.
        report.llem_item = item.identity()  # type: ignore[attr-defined]
        if call.when == "call" and collect.MEASUREMENT_KEY in item.stash:
            report.llem_measurement = item.stash[collect.MEASUREMENT_KEY]  # type: ignore[attr-defined]
    return report


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    setup.select_shard(config, config.stash[SETTINGS_KEY], items)
    if not _is_xdist_worker(config) and any(isinstance(i, collect.ExperimentItem) for i in items):
        guard.results_dir_or_exit(config, config.stash[SETTINGS_KEY].results_dir)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: object, ids: list[str]) -> None:
    config: pytest.Config = node.config  # type: ignore[attr-defined]
    settings = config.stash[SETTINGS_KEY]
    if any(collect.is_study_file(Path(i.split("::", 1)[0]), settings) for i in ids):
        guard.results_dir_or_exit(config, settings.results_dir)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    # One session id across the run: results, reports and container labels all carry it.
    workerinput: dict[str, object] = node.workerinput  # type: ignore[attr-defined]
    config: pytest.Config = node.config  # type: ignore[attr-defined]
    workerinput[options.SESSION_ID_KEY] = config.stash[SETTINGS_KEY].session_id


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    return workers.auto_workers()


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    return workers.make_scheduler(config, log, config.stash[SETTINGS_KEY].study_patterns)
