"""``python -m pytest_llem``: a real ``--help`` for the tool and each command, usage errors."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_llem.__main__ import COMMANDS, main
from pytest_llem.cli.validate import command
from pytest_llem.cli.validate.analysis import ValidationReport

# The options each command's help must show (with help text, like every other entry).
OPTIONS = {
    "merge": ["REPORT", "--output", "--compare", "--baseline-dir", "--fail-on", "--max-cv"],
    "migrate": ["STUDY", "--check"],
    "validate": [
        "--shape",
        "--cycles",
        "--batch-sizes",
        "--device",
        "--precision",
        "--input-len",
        "--max-output-tokens",
        "--out",
        "--max-window-diff-pct",
        "--max-cv-pct",
        "--max-zeus-diff-pct",
    ],
}


def run_tool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m pytest_llem ARGS`` in a subprocess, at a fixed terminal width."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_llem", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "100"},
    )


def help_entries(text: str) -> list[tuple[str, bool]]:
    """Each entry of argparse's help sections, and whether it has help text.

    An entry is an option line (indent 2, starting with ``-``), a positional (indent 2 under
    ``positional arguments:``) or a command (under ``commands:``). Its help follows on the same
    line after two or more spaces, or on the next line, indented to the help column. The
    description above the first section is skipped: its examples are not entries.
    """
    lines = text.splitlines()
    firsts = [i for i, line in enumerate(lines) if line in ("positional arguments:", "options:")]
    section, entries = "", []
    for index in range(firsts[0] if firsts else len(lines), len(lines)):
        line = lines[index]
        if line and not line[0].isspace():
            section = line if line.endswith(":") else section
            continue
        indent = len(line) - len(line.lstrip(" "))
        name = line.strip()
        listed = section in ("positional arguments:", "commands:") and indent in (2, 4)
        if not (listed or (indent == 2 and name.startswith("-"))):
            continue
        inline = re.match(r"\S+(?: \S+)*? {2,}\S", name) is not None
        following = lines[index + 1] if index + 1 < len(lines) else ""
        below = following.startswith(" " * (indent + 4)) and bool(following.strip())
        entries.append((name, inline or below))
    return entries


def test_the_entry_parser_finds_an_option_without_help() -> None:
    text = (
        "usage: x [-h]\n\nexamples:\n  x --bare\n\noptions:\n"
        "  -h, --help  show this help message and exit\n  --bare\n  --long-option VALUE\n"
        "                        its help, on the next line\n  --last\n"
    )
    assert help_entries(text) == [
        ("-h, --help  show this help message and exit", True),
        ("--bare", False),
        ("--long-option VALUE", True),
        ("--last", False),
    ]


def test_the_top_level_help_lists_every_command_with_its_summary(tmp_path: Path) -> None:
    proc = run_tool("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("usage: python -m pytest_llem [-h] COMMAND ...")
    for name, (_, summary) in COMMANDS.items():
        assert re.search(rf"^    {name} +{re.escape(summary)}$", out, re.MULTILINE), out
    entries = help_entries(out)
    assert len(entries) == 2 + len(COMMANDS)  # -h, COMMAND and the commands
    assert all(has_help for _, has_help in entries), entries
    assert "``" not in out
    assert run_tool("-h", cwd=tmp_path).stdout == out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_of_a_command_has_help(name: str, tmp_path: Path) -> None:
    proc = run_tool(name, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith(f"usage: python -m pytest_llem {name} [-h]")
    assert "``" not in out
    entries = help_entries(out)
    assert [entry for entry, has_help in entries if not has_help] == []
    for option in OPTIONS[name]:
        assert any(re.match(rf"(\S+ )*{option}\b", entry) for entry, _ in entries), option
    # The description sits between the usage and the first section: plain text, not empty.
    description = out.split("\n\n")[1]
    assert len(description.split()) > 20 and "usage" not in description


def test_validate_help_says_what_a_cpu_run_measures(tmp_path: Path) -> None:
    out = " ".join(run_tool("validate", "--help", cwd=tmp_path).stdout.split())
    assert "Needs an NVIDIA GPU" in out
    assert "with --device cpu the model runs on the CPU, no GPU is measured" in out
    assert "(default: cuda)" in out and "(default: 5)" in out and "(default: 1,8)" in out
    assert "(default: llem-validate)" in out.replace("llem- validate", "llem-validate")


def test_no_command_is_a_usage_error_naming_the_commands(tmp_path: Path) -> None:
    proc = run_tool(cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "error: the following arguments are required: COMMAND" in proc.stderr
    for name, (_, summary) in COMMANDS.items():
        assert f"  {name}" in proc.stderr and summary in proc.stderr


def test_an_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    proc = run_tool("frobnicate", cwd=tmp_path)
    assert proc.returncode == 2
    assert "invalid choice: 'frobnicate'" in proc.stderr
    assert "merge" in proc.stderr and "validate" in proc.stderr


def test_a_command_usage_error_exits_2(tmp_path: Path) -> None:
    proc = run_tool("merge", "only.json", cwd=tmp_path)
    assert proc.returncode == 2
    assert "required: -o/--output" in proc.stderr
    proc = run_tool("validate", "--cycles", "3", cwd=tmp_path)
    assert proc.returncode == 2 and "--cycles: must be at least 5" in proc.stderr


PROBE = """
import json, sys
from pytest_llem.__main__ import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
names = ["torch", "transformers", "pytest_llem.cli.merge", "pytest_llem.cli.migrate",
         "pytest_llem.cli.validate.command"]
print(json.dumps({"code": code, "loaded": [n for n in names if n in sys.modules]}))
"""


@pytest.mark.parametrize("args", [[], ["merge"], ["migrate"], ["validate"]])
def test_help_imports_no_torch_and_only_its_own_command(args: list[str], tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args, "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    own = [COMMANDS[args[0]][0]] if args else []
    assert result == {"code": 0, "loaded": own}


def test_a_command_runs_through_the_top_level_parser(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current, old = tmp_path / "current.yaml", tmp_path / "old.yaml"
    current.write_text("model: m\n")
    old.write_text("model: m\nbaseline: {duration_seconds: 20}\n")
    assert main(["migrate", "--check", str(current)]) == 0
    assert main(["migrate", "--check", str(current), str(old)]) == 1
    out = capsys.readouterr().out
    assert f"{old}: would be migrated" in out and f"{current}: up to date" in out
    stranger = tmp_path / "stranger.json"
    stranger.write_text('{"report_version": 0}')
    assert main(["merge", str(stranger), "-o", str(tmp_path / "m.json")]) == 2
    assert f"{stranger} is not a pytest-llem report" in capsys.readouterr().err
    assert not (tmp_path / "m.json").exists()


def test_validate_gets_its_defaults_through_the_top_level_parser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[argparse.Namespace] = []

    def validate(args: argparse.Namespace) -> ValidationReport:
        seen.append(args)
        args.out.mkdir(parents=True)
        return ValidationReport(failures=["nothing measured"])

    monkeypatch.setattr(command, "validate", validate)
    assert main(["validate", "--out", str(tmp_path / "v")]) == 1
    (args,) = seen
    assert args.shape == ["1b", "8b"] and args.batch_sizes == [1, 8] and args.cycles == 5
    assert (tmp_path / "v" / "validation.md").read_text() in capsys.readouterr().out
