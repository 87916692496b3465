"""``python -m pytest_llem merge ...``: command-line tools beside the plugin."""

from __future__ import annotations

import sys


def main() -> int:
    """Dispatch the subcommand."""
    if len(sys.argv) > 1 and sys.argv[1] == "validate":  # measurement validation kit
        from pytest_llem.validate.cli import main as validate_main

        return validate_main(sys.argv[2:])
    if len(sys.argv) < 2 or sys.argv[1] not in ("merge",):
        print(
            "usage: python -m pytest_llem merge REPORT.json [REPORT.json ...] -o OUT.json",
            file=sys.stderr,
        )
        return 2
    from pytest_llem.merge import main as merge_main

    return merge_main(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
