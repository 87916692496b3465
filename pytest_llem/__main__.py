"""``python -m pytest_llem COMMAND``: the command-line tools beside the plugin.

Each command lives in a module of ``cli/`` that exposes ``DESCRIPTION``, ``add_arguments``
and ``run`` (and a ``main`` of its own). Only the module of the command named on the command
line is imported: the top-level help needs none of them, and no ``--help`` imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

PROG = "python -m pytest_llem"

# name: (module, one-line help). The one-line help lives here so that listing the commands
# imports none of them.
COMMANDS: dict[str, tuple[str, str]] = {
    "merge": (
        "pytest_llem.cli.merge",
        "merge shard reports and re-apply the gate over all cycles",
    ),
    "migrate": (
        "pytest_llem.cli.migrate",
        "rewrite LLenergyMeasure study files to the current key names",
    ),
    "validate": (
        "pytest_llem.cli.validate.command",
        "check NVIDIA GPU energy readings against an independent reader",
    ),
}

DESCRIPTION = """\
Command-line tools of pytest-llem, the pytest plugin for LLM energy benchmarks.
Benchmarks run under pytest itself (e.g. pytest benchmarks/ --llem-compare
main); these commands work on what such runs write (merge), on study files
(migrate), and on the energy measurement of this machine (validate).
"""

EPILOG = f"Run '{PROG} COMMAND --help' for a command's options."


def _commands_text() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "commands:\n" + "\n".join(lines) + "\n"


class _Parser(argparse.ArgumentParser):
    """The top-level parser: a usage error also lists the commands (argparse names only
    ``COMMAND``)."""

    def error(self, message: str) -> NoReturn:
        """Print usage, the commands and ``message``; exit 2 (argparse's usage error)."""
        self.print_usage(sys.stderr)
        self.exit(2, f"\n{_commands_text()}\n{EPILOG}\n\n{self.prog}: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command; only ``command``'s module is imported, for its options.

    The other commands get a bare sub-parser (name and one-line help): enough to list them,
    and never used to parse since argparse picks the sub-parser by the first argument.
    """
    parser = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        title="commands",
        help="the command to run, one of:",
        parser_class=argparse.ArgumentParser,  # a command's own errors: plain argparse
    )
    for name, (module_name, summary) in COMMANDS.items():
        if name != command:
            commands.add_parser(name, help=summary)
            continue
        module = importlib.import_module(module_name)
        sub = commands.add_parser(
            name,
            help=summary,
            description=module.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run the command; its exit status (2 on a usage error)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    command = args_list[0] if args_list and args_list[0] in COMMANDS else None
    args = build_parser(command).parse_args(args_list)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
