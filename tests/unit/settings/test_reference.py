"""The manual's options reference: every flag and ini key that ``pytest --help`` shows, grouped
by topic, with its type and its real default, in tables that fit the page at 1280 px."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from pytest_llem.settings import reference
from pytest_llem.settings.resolve import Settings, resolve
from pytest_llem.settings.table import GROUPS, OFF, OPTIONS, Option

# From the checkout, not the package: tox runs the tests against an installed wheel.
ROOT = Path(__file__).parents[3]
OPTIONS_PAGE = ROOT / "docs" / "options.md"
MARKER = "<!-- options -->"

# The width rule, measured in Chromium at 1280x900 on the built options page (the theme with
# docs/css/llem.css, the page's table of contents hidden): each table gets 938 px; a code
# character is 6.55 px, plus 6.4 px of span padding; a cell pads 19.2 px (0.75em of 12.8 px);
# a prose character is at most 8 px (the widest words measured); every column keeps the
# theme's 100 px header minimum, the meaning column 16em (204.8 px), in which long words break.
TABLE_PX = 938.0
CODE_CHAR_PX, CODE_PAD_PX, CELL_PAD_PX, TEXT_CHAR_PX = 6.55, 6.4, 19.2, 8.0
COLUMN_MIN_PX, MEANING_MIN_PX = 100.0, 204.8


@pytest.fixture(scope="module")
def help_text(tmp_path_factory: pytest.TempPathFactory) -> str:
    # A fresh process in an empty directory: what any user's `pytest --help` shows.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path_factory.mktemp("help"),
    )
    return result.stdout


def tables(text: str) -> dict[str, list[list[str]]]:
    """Heading -> the markdown cells of each body row of the table under it."""
    out: dict[str, list[list[str]]] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith("## "):
            heading = line[3:]
            out[heading] = []
        elif line.startswith("| ") and not line.startswith("| option |"):
            # An escaped pipe is "\|" and one in a code span has no spaces around it.
            out[heading].append(line[2:-2].split(" | "))
    return out


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]*)`", cell)


def words(cell: str) -> list[str]:
    """The prose of a cell (code spans left out), as the page shows it."""
    prose = re.sub(r"`[^`]*`", " ", cell).replace("\\", "")
    return prose.replace("&lt;", "<").replace("&gt;", ">").split()


def test_every_flag_of_pytest_help_is_in_the_reference(help_text: str) -> None:
    # argparse may wrap a help line after a hyphen; the fragment is still a prefix of the flag.
    flags = {f.rstrip("-") for f in re.findall(r"--llem-[a-z-]+", help_text)}
    assert "--llem-results" in flags
    spans = {span for row in reference.markdown().splitlines() for span in code_spans(row)}
    assert sorted(f for f in flags if not any(s.startswith(f) for s in spans)) == []


def test_every_ini_key_of_pytest_help_is_in_the_reference(help_text: str) -> None:
    keys = set(re.findall(r"llem_[a-z_]+", help_text))
    assert {"llem_results_dir", "llem_docker_env", "llem_study_patterns"} <= keys
    text = reference.markdown()
    assert sorted(k for k in keys if f"`{k}`" not in text) == []


def test_one_table_per_topic_under_its_heading_in_the_topics_order() -> None:
    text = reference.markdown()
    found = tables(text)
    assert list(found) == list(GROUPS)
    assert text.count(reference.HEADER) == len(GROUPS)
    for heading in GROUPS:
        assert f"[{heading}](#{reference.slug(heading)})" in text.splitlines()[0]
    for rows in found.values():
        assert rows and all(len(cells) == len(reference.COLUMNS) == 5 for cells in rows)


def test_every_row_has_a_known_group_a_type_and_a_default() -> None:
    rows = reference.rows()
    assert reference.incomplete(rows) == []
    assert {row.group for row in rows} == set(GROUPS)
    by_ini = {row.ini: row for row in rows if row.ini}
    assert by_ini["llem_docker_env"].group == "Containers"
    assert by_ini["llem_study_patterns"].default == "`study_*.yaml` `study_*.yml`"
    assert by_ini["llem_max_items"].type == "integer ≥ 1"  # named after its converter


def test_every_flag_and_ini_key_is_a_code_span_of_its_own() -> None:
    rows = reference.rows()
    for cells, row in zip(
        [cells for found in tables(reference.markdown()).values() for cells in found],
        sorted(rows, key=lambda r: GROUPS.index(r.group or "")),
        strict=True,
    ):
        flag, ini = cells[0], cells[1]
        expected_flag = [row.flag, row.metavar] if row.metavar else [row.flag]
        assert code_spans(flag) == (expected_flag if row.flag else []), row.name
        assert ini == (f"`{row.ini}`" if row.ini else ""), row.name


def test_a_row_without_a_group_fails_the_build_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # A line-list ini key registered in resolve.py but not described for the manual.
    kept = tuple(entry for entry in reference.INI_LISTS if entry.ini != "llem_docker_env")
    monkeypatch.setattr(reference, "INI_LISTS", kept)
    assert reference.incomplete(reference.rows()) == ["llem_docker_env"]
    with pytest.raises(ValueError, match="llem_docker_env"):
        reference.markdown()


def test_an_option_needs_a_known_group_and_a_default() -> None:
    with pytest.raises(ValueError, match=r"'planted'.*'Misc'"):
        Option("planted", "help", group="Misc", default=OFF)
    with pytest.raises(ValueError, match=r"'planted'.*default"):
        Option("planted", "help", group=GROUPS[0], default=" ")
    with pytest.raises(TypeError, match="group"):
        Option("planted", "help", default=OFF)  # type: ignore[call-arg]


def test_the_tables_fit_the_page_at_1280_px() -> None:
    """No column squeezed and nothing scrolled at 1280 px: each table's narrowest layout (the
    longest name, code span or word of each column, at the widths measured) fits."""
    for heading, rows in tables(reference.markdown()).items():
        widest = [COLUMN_MIN_PX] * 4 + [MEANING_MIN_PX]
        for cells in rows:
            for column, cell in enumerate(cells[:4]):
                spans = [len(s) * CODE_CHAR_PX + CODE_PAD_PX for s in code_spans(cell)]
                prose = [len(w) * TEXT_CHAR_PX for w in words(cell)]
                token = max([*spans, *prose, 0.0]) + CELL_PAD_PX
                widest[column] = max(widest[column], token)
        assert sum(widest) + 2 <= TABLE_PX, (heading, [round(w) for w in widest])


def test_the_stylesheet_and_page_give_the_widths_the_rule_assumes() -> None:
    css = (ROOT / "docs" / "css" / "llem.css").read_text(encoding="utf-8")
    for rule in ("white-space: nowrap", "padding-left: 0.75em", "min-width: 16em"):
        assert rule in css
    assert "overflow-wrap: anywhere" in css
    assert "  - css/llem.css" in (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    page = OPTIONS_PAGE.read_text(encoding="utf-8")
    assert page.startswith("---\n") and "hide:\n  - toc\n" in page.split("---")[1]


def test_the_help_texts_default_notes_agree_with_the_default_column() -> None:
    text = reference.markdown()
    assert "(default" not in text.replace("(default;", "").replace("(default true;", "")
    for row in reference.rows():
        for note in re.findall(r"\(default:? ([^();]*)\)", row.help):
            assert note in (row.default or "").replace("`", ""), row.name


def _settings(pytester: pytest.Pytester) -> Settings:
    return resolve(pytester.parseconfigure())


def _shown(value: Any) -> str:
    """A resolved value as the default column writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# How Settings holds each option's default: a value, unset (OFF), or unset because something
# else decides it (the study, the image, each item's work): the column says what.
LITERAL: dict[str, Callable[[Settings], Any]] = {
    "results": lambda s: f"<rootdir>/{s.results_dir.relative_to(s.rootdir).as_posix()}",
    "json": lambda s: f"<results>/{s.json_path.relative_to(s.results_dir).as_posix()}",
    "max_items": lambda s: s.max_items,
    "require_gpu": lambda s: s.require_gpu,
    "baseline_dir": lambda s: f"<rootdir>/{s.baseline_dir.relative_to(s.rootdir).as_posix()}",
    "require_energy": lambda s: s.require_energy,
    "require_baseline": lambda s: s.require_baseline,
    "inconclusive": lambda s: s.inconclusive,
    "save_baseline_force": lambda s: s.save_baseline_force,
    "container_strategy": lambda s: s.docker.strategy,
    "persistent_auto_teardown": lambda s: s.docker.auto_teardown,
    "persistent_warmup_delay": lambda s: s.docker.warmup_delay_s,
    "persistent_max_restarts": lambda s: s.docker.max_restarts,
    "persistent_worker": lambda s: s.docker.worker,
    "persistent_gpu_memory_mb": lambda s: s.docker.gpu_memory_threshold_mb,
    "junit_properties": lambda s: s.junit_properties,
    "timeseries": lambda s: s.timeseries,
}
UNSET: dict[str, Callable[[Settings], Any]] = {
    "save_baseline": lambda s: s.save_baseline,
    "compare": lambda s: s.compare,
    "plot": lambda s: s.plot_dir,
    "bmf": lambda s: s.bmf_path,
    "export": lambda s: s.exports,
    "shard": lambda s: s.shard,
    "resume": lambda s: s.resume_dir,
    "item_timeout": lambda s: s.item_timeout_s,
}
ELSEWHERE: dict[str, Callable[[Settings], Any]] = {
    "energy": lambda s: s.energy,
    "cycles": lambda s: s.cycles,
    "on_disturbed": lambda s: s.on_disturbed,
    "fail_on": lambda s: s.fail_on_cli + s.fail_on_ini,
    "max_cv": lambda s: s.max_cv,
    "runner": lambda s: s.runner_cli,
    "ab": lambda s: s.ab_cli,
    "runner_pytorch": lambda s: s.runner_ini.get("pytorch"),
    "runner_vllm": lambda s: s.runner_ini.get("vllm"),
    "docker_timeout": lambda s: s.docker.timeout_s,
    "docker_python": lambda s: s.docker.python,
}


def test_the_default_column_is_what_resolve_gives(pytester: pytest.Pytester) -> None:
    settings = _settings(pytester)
    described = {*LITERAL, *UNSET, *ELSEWHERE, "docker_hf_cache"}
    # A new option fails here by name: say above how Settings holds its default.
    assert sorted(opt.name for opt in OPTIONS if opt.name not in described) == []
    for opt in OPTIONS:
        if opt.name in LITERAL:
            assert code_spans(opt.default)[:1] == [_shown(LITERAL[opt.name](settings))], opt.name
        elif opt.name in UNSET:
            assert not UNSET[opt.name](settings) and opt.default == OFF, opt.name
        elif opt.name in ELSEWHERE:
            assert not ELSEWHERE[opt.name](settings) and opt.default != OFF, opt.name
    patterns = next(e for e in reference.INI_LISTS if e.ini == "llem_study_patterns")
    assert code_spans(patterns.default) == list(settings.study_patterns)


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("options_hook", ROOT / "docs/hooks/options.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_docs_hook_fills_the_options_page_and_wraps_its_tables() -> None:
    hook = _hook()
    page = SimpleNamespace(file=SimpleNamespace(src_uri="options.md"))
    other = SimpleNamespace(file=SimpleNamespace(src_uri="gate.md"))
    filled = hook.on_page_markdown(OPTIONS_PAGE.read_text(encoding="utf-8"), page, None, None)
    assert MARKER not in filled and "## Regression gate" in filled
    with pytest.raises(ValueError, match="marker"):
        hook.on_page_markdown("# Options reference\n", page, None, None)
    html = "<p>x</p>\n<table>\n<tr><td>a</td></tr>\n</table>\n"
    wrapped = hook.on_page_content(html, page, None, None)
    assert '<div class="llem-options">\n<table>' in wrapped and "</table>\n</div>" in wrapped
    assert hook.on_page_content(html, other, None, None) == html


def test_help_text_is_literal_markdown() -> None:
    text = reference.markdown()
    # A pipe would split the table cell; "<rootdir>" would be read as an HTML tag.
    assert "auto\\|nvml" in text
    assert "&lt;nodeid&gt;" in text
    assert "<rootdir>" not in text.replace("`<rootdir>", "")  # only inside code spans
    assert "5%%" not in text


def test_ini_only_keys_have_an_empty_flag_cell() -> None:
    line = next(x for x in reference.markdown().splitlines() if "`llem_runners`" in x)
    assert line.startswith("|  | `llem_runners` | backend = runner, one per line | none |")


def test_a_flag_shares_its_row_with_its_ini_key() -> None:
    rows = {row.flag: row for row in reference.rows() if row.flag}
    assert rows["--llem-results"].ini == "llem_results_dir"
    assert rows["--llem-require-gpu"].ini_type == "bool"
    assert rows["--llem-require-gpu"].type == "boolean"
    assert rows["--llem-json"].ini is None


def test_the_options_page_has_the_marker_the_docs_hook_replaces() -> None:
    assert MARKER in OPTIONS_PAGE.read_text(encoding="utf-8")


# The real-browser check: optional (CI installs no browser); the width rule above stands alone.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Runs after the theme's scripts have wrapped the tables; writes what it saw into the page.
MEASURE_JS = """setTimeout(function () {
  var tables = Array.from(document.querySelectorAll(".llem-options table")).map(function (t) {
    var wrap = t.closest(".md-typeset__scrollwrap") || t.parentElement;
    return {overflow: wrap.scrollWidth - wrap.clientWidth,
      cols: Array.from(t.rows[0].cells).map(function (c) { return c.offsetWidth; }),
      broken: Array.from(t.querySelectorAll("td code")).filter(function (c) {
        return c.getClientRects().length > 1; }).map(function (c) { return c.textContent; })};
  });
  var pres = Array.from(document.querySelectorAll("pre > code")).filter(function (c) {
    return c.scrollWidth > c.clientWidth; }).map(function (c) { return getComputedStyle(c).overflowX; });
  var out = document.createElement("pre"); out.id = "llem-measure";
  out.textContent = JSON.stringify({tables: tables, pres: pres});
  document.body.appendChild(out);
}, 1500);"""


def _measure(page: Path) -> dict[str, Any]:
    probe = page.with_name("measure.html")
    probe.write_text(
        page.read_text(encoding="utf-8").replace(
            "</body>", f"<script>{MEASURE_JS}</script></body>"
        ),
        encoding="utf-8",
    )
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
    dom = subprocess.run(
        [
            CHROMIUM,
            *flags,
            f"--user-data-dir={page.parent / 'profile'}",
            "--window-size=1280,900",
            "--virtual-time-budget=5000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    found = re.search(r'<pre id="llem-measure">(.*?)</pre>', dom, re.S)
    assert found, dom[-500:]
    result: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return result


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="no chromium to render the manual")
def test_in_chromium_at_1280_px_names_stay_whole_and_nothing_is_cut(tmp_path: Path) -> None:
    pytest.importorskip("material", reason="the docs extra is not installed")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        check=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    options = _measure(site / "options" / "index.html")
    assert len(options["tables"]) == len(GROUPS)
    for table in options["tables"]:
        assert table["overflow"] <= 0 and table["broken"] == [], table
        assert min(table["cols"]) >= COLUMN_MIN_PX - 1, table
    for page in ("gate", "getting-started", "architecture"):
        # Wide examples (the verdict, the output table, the diagram) scroll; none is clipped.
        pres = _measure(site / page / "index.html")["pres"]
        assert pres and set(pres) <= {"auto", "scroll"}, (page, pres)
