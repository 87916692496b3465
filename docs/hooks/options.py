"""MkDocs hook: writes the generated options reference into ``options.md``.

The reference comes from ``pytest_llem.settings.reference``, which reads what the plugin
registers with pytest, so the page cannot drift from ``pytest --help``. Its tables are wrapped
in ``<div class="llem-options">`` so that ``docs/css/llem.css`` can style them alone.
"""

from __future__ import annotations

from typing import Any

from pytest_llem.settings import reference

MARKER = "<!-- options -->"
PAGE = "options.md"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace the marker on the options page with the reference tables."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        # A page without the marker would build without its table: fail instead.
        raise ValueError(f"docs/options.md lost its {MARKER!r} marker")
    return markdown.replace(MARKER, reference.markdown())


def on_page_content(html: str, page: Any, config: Any, files: Any) -> str:
    """Wrap the options page's tables: the theme styles only tables without a class, and
    Python-Markdown's tables cannot take one."""
    if page.file.src_uri != PAGE:
        return html
    if html.count("<table>") != html.count("</table>"):
        raise ValueError(f"{PAGE}: unbalanced tables, cannot wrap them")
    return html.replace("<table>", '<div class="llem-options">\n<table>').replace(
        "</table>", "</table>\n</div>"
    )
