"""``python -m pytest_llem merge|migrate|validate ...``: command-line tools beside the plugin."""

from __future__ import annotations

import sys

USAGE = """usage:
  python -m pytest_llem merge REPORT.json [REPORT.json ...] -o OUT.json
  python -m pytest_llem migrate [--check] STUDY.yaml [STUDY.yaml ...]
  python -m pytest_llem validate [--help]"""


def main() -> int:
    """Dispatch the subcommand."""
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "validate":  # measurement validation kit
        from pytest_llem.cli.validate.command import main as validate_main

        return validate_main(sys.argv[2:])
    if command == "merge":
        from pytest_llem.cli.merge import main as merge_main

        return merge_main(sys.argv[2:])
    if command == "migrate":
        from pytest_llem.cli.migrate import main as migrate_main

        return migrate_main(sys.argv[2:])
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
