"""Where the Ollama server is: ``OLLAMA_HOST`` parsed as Ollama's own tools do.

``is_loopback`` / ``proxy_in_env`` live in :mod:`..http` (every API uses them).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import urllib.parse

from ...core.errors import InvalidParamsError

from ..proxies import PROXY_VARS, is_loopback, proxy_in_env  # re-exported: imports keep working

logger = logging.getLogger("gleitzeit_nb.providers.ollama")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11434
__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "PROXY_VARS", "parse_host", "host_from_env",
           "is_loopback", "proxy_in_env"]


def parse_host(value: str | None, *, lenient: bool = False) -> str:
    """Normalise an ``OLLAMA_HOST``-style value to ``scheme://host:port[/path]``.

    >>> parse_host(None)
    'http://127.0.0.1:11434'
    >>> parse_host(':56789')
    'http://127.0.0.1:56789'
    >>> parse_host('example.com/path/')
    'http://example.com:11434/path'
    >>> parse_host('https://[::1]')
    'https://[::1]:443'
    >>> parse_host('0.0.0.0')
    'http://127.0.0.1:11434'
    >>> parse_host('"::1"')
    'http://[::1]:11434'
    """
    value = (value or "").strip().strip("\"'").strip()  # Ollama drops quotes around the value
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "http", value
    scheme = scheme.lower()
    default_port = {"http": 80, "https": 443}.get(scheme, DEFAULT_PORT) if sep else DEFAULT_PORT
    hostport, slash, path = rest.partition("/")
    if _is_ipv6(hostport):  # a bare IPv6 address, e.g. ::1
        hostport = f"[{hostport}]"

    split = urllib.parse.urlsplit(f"{scheme}://{hostport}{slash}{path}")
    host = split.hostname or DEFAULT_HOST
    try:
        port = split.port or default_port
    except ValueError:  # not a number or out of range
        if not lenient:
            raise InvalidParamsError(f"{value!r} has an invalid port; use e.g. 127.0.0.1:11434.",
                                     param="host") from None
        # as Ollama's tools do with OLLAMA_HOST: warn and use the default
        logger.warning("OLLAMA_HOST=%r has an invalid port; using %s", value, default_port)
        port = default_port
    # The server listens on 0.0.0.0 / :: when told to; a client reaches it through loopback.
    if host in ("0.0.0.0", "::"):
        host = DEFAULT_HOST if host == "0.0.0.0" else "::1"
    if ":" in host:
        host = f"[{host}]"
    path = split.path.rstrip("/")
    return f"{scheme}://{host}:{port}{path}"


def _is_ipv6(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv6Address)
    except ValueError:
        return False


def host_from_env() -> str:
    """The server URL from ``OLLAMA_HOST`` (default ``http://127.0.0.1:11434``)."""
    return parse_host(os.environ.get("OLLAMA_HOST"), lenient=True)
