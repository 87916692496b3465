"""MkDocs hook: writes the generated options reference into ``options.md``.

The reference comes from ``pytest_llem.settings.reference``, which reads what the plugin
registers with pytest, so the page cannot drift from ``pytest --help``.
"""

from __future__ import annotations

from typing import Any

from pytest_llem.settings import reference

MARKER = "<!-- options -->"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the marker on the options page with the reference table."""
    if page.file.src_uri != "options.md":
        return markdown
    if MARKER not in markdown:
        # A page without the marker would build without its table: fail instead.
        raise ValueError(f"docs/options.md lost its {MARKER!r} marker")
    return markdown.replace(MARKER, reference.markdown())
