"""Model text as HTML for pages outside Jupyter (reports, exported sessions): Markdown rendered
as nbconvert renders it, then cleaned to a list of harmless tags and attributes.

Jupyter installs (jupyter_server, nbclient) bring nbconvert and bleach; without them the text is
shown escaped, as typed (:func:`has_renderer` says which).
"""

from __future__ import annotations

import html

__all__ = ["safe_html", "has_renderer"]

_TAGS = ["a", "b", "blockquote", "br", "code", "del", "details", "div", "em", "h1", "h2", "h3",
         "h4", "h5", "h6", "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong", "sub",
         "summary", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul"]
_ATTRIBUTES = {"a": ["href", "title"], "code": ["class"], "span": ["class"], "div": ["class"],
               "td": ["align"], "th": ["align"], "details": ["open"]}


def safe_html(markdown: str) -> str:
    """Markdown rendered as nbconvert does, then only harmless tags and attributes kept."""
    import bleach
    from nbconvert.filters.markdown import markdown2html

    return bleach.clean(markdown2html(markdown), tags=_TAGS, attributes=_ATTRIBUTES,
                        protocols=["http", "https", "mailto"])  # others shown as text


def has_renderer() -> bool:
    """Whether nbconvert's Markdown renderer and bleach are installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("bleach", "nbconvert"))


def escaped_text(text: str) -> str:
    """Text shown as typed: escaped, line breaks kept."""
    return f'<div style="white-space:pre-wrap">{html.escape(text)}</div>'
