"""How failures read in messages: why a connection failed, what a reply body says."""

from __future__ import annotations

import errno
import re

import httpx


def cap_first(text: str) -> str:
    return text[:1].upper() + text[1:]


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}


def reason(exc: httpx.HTTPError) -> str:
    """Why a connection failed, in words (never httpx's class names)."""
    text = str(exc) or type(exc).__name__
    # anyio reports "All connection attempts failed"; the OSError behind it says why.
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[cause.errno]
        cause = cause.__cause__ or cause.__context__
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "name or service not known" in low or "nodename nor servname" in low:
        return "unknown host name"
    if "reset" in low:
        return "connection reset"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection without answering"
    return text


_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)


def looks_like_html(raw: bytes) -> bool:
    """Whether a body is a web page (a proxy's error page, a web server's 404…)."""
    head = raw[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<!--", b"<head", b"<body")) or \
        b"<html" in head


def body_text(raw: bytes) -> str:
    """A reply body as a message shows it: a web page as its title, other text cut at 300."""
    if looks_like_html(raw):
        found = _TITLE.search(raw[:4096])
        title = " ".join(found.group(1).decode("utf-8", "replace").split()) if found else ""
        return f"a web page titled {title!r}" if title else "a web page"
    return raw.decode("utf-8", "replace").strip()[:300]
