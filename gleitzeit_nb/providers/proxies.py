"""Which proxy a request to a server goes through, and what to say when it fails there.

httpx takes proxies from ``HTTP_PROXY`` / ``HTTPS_PROXY`` / ``ALL_PROXY`` (lower case first, as
``urllib`` reads them) unless ``NO_PROXY`` names the host; a loopback server never uses one
(:class:`~gleitzeit_nb.providers.http.HttpTransport` builds its client with ``trust_env=False``).
Messages name the proxy without its credentials and the variable that set it.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.errors import LLMError, ProviderUnavailableError

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


@dataclass(frozen=True)
class Proxy:
    """A proxy in use: ``url`` without user and password, ``var`` what set it ("HTTP_PROXY",
    "proxy=", "the system proxy settings")."""

    url: str
    var: str

    def __str__(self) -> str:
        source = "" if self.var == "proxy=" else "from "
        return f"the proxy {self.url} ({source}{self.var})"

    def fix(self, host: str, status: int | None = None) -> str:
        """What to do when a request through this proxy failed with ``status`` (None: the
        proxy could not be reached)."""
        local = f"add {host} to NO_PROXY"
        if status == 407:
            return (f"Put the proxy's user and password in {self.var} "
                    f"(http://USER:PASSWORD@HOST:PORT), or if the server is local, {local}.")
        if status in (502, 503, 504):
            return (f"The proxy could not reach the server: if it is local, {local}; else "
                    "check the server's host name and port.")
        what = " and that the proxy runs" if status is None else ""
        return f"If the server is local, {local}; else check {self.var}{what}."


def is_loopback(url: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1: never sent through a proxy."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def proxy_in_env() -> str | None:
    """Name of the first proxy variable set in the environment, if any."""
    return next((v for v in PROXY_VARS if os.environ.get(v)), None)


def without_credentials(url: str) -> str:
    """``http://user:pw@proxy:3128/`` → ``http://proxy:3128`` (a bare host gets http://)."""
    split = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    host = split.hostname or ""
    host = f"[{host}]" if ":" in host else host
    try:
        port = f":{split.port}" if split.port else ""
    except ValueError:
        port = ""
    return f"{split.scheme.lower()}://{host}{port}"


def hide_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` removed (path kept): safe to show; a server name or
    a URL without credentials comes back unchanged."""
    split = urllib.parse.urlsplit(url)
    if "://" not in url or "@" not in split.netloc:
        return url
    return urllib.parse.urlunsplit(split._replace(netloc=split.netloc.rpartition("@")[2]))


def proxy_for(url: str, client_kwargs: Mapping[str, Any] | None = None) -> Proxy | None:
    """The proxy a request to ``url`` goes through (None: none, loopback, or NO_PROXY).

    ``client_kwargs`` are the httpx client's: ``proxy=`` wins, and ``trust_env=False``,
    ``mounts=`` or ``transport=`` mean the environment is not read.
    """
    kw = client_kwargs or {}
    if kw.get("proxy"):
        return Proxy(without_credentials(str(kw["proxy"])), "proxy=")
    if is_loopback(url) or kw.get("trust_env") is False or kw.get("mounts") or \
            kw.get("transport"):
        return None
    split = urllib.parse.urlsplit(url)
    scheme = split.scheme.lower()
    names = (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")
    var = next((n for n in names if os.environ.get(n)), None)
    if var is not None:
        value, source = os.environ[var], var
    else:  # macOS / Windows: httpx also reads the system's settings
        system = urllib.request.getproxies()
        value, source = system.get(scheme) or system.get("all") or "", "the system proxy settings"
        if not value:
            return None
    if urllib.request.proxy_bypass_environment(split.hostname or "",
                                               {"no": os.environ.get("no_proxy") or
                                                os.environ.get("NO_PROXY") or ""}):
        return None
    return Proxy(without_credentials(value), source)


def unusable_proxy(exc: Exception, client_kwargs: Mapping[str, Any],
                   server: str) -> LLMError | None:
    """Our error for httpx refusing to build a client for a proxy URL: a SOCKS proxy without
    ``socksio`` (ImportError) or a scheme it does not know (ValueError); else None."""
    text = str(exc).lower()
    if isinstance(exc, ImportError) and "socks" not in text or \
            isinstance(exc, ValueError) and "proxy" not in text:
        return None
    socks = isinstance(exc, ImportError)

    def culprit(value: str) -> bool:
        scheme = value.partition("://")[0].lower() if "://" in value else "http"
        return scheme.startswith("socks") if socks else \
            scheme not in ("http", "https", "socks5", "socks5h")

    given = client_kwargs.get("proxy")
    if given:
        var, value = "proxy=", str(given)
    else:
        var = next((v for v in PROXY_VARS if culprit(os.environ.get(v, "") or "http")),
                   "a proxy variable")
        value = os.environ.get(var, "")
    shown = f" ({without_credentials(value)})" if value else ""
    if socks:
        message = (f"{var} names a SOCKS proxy{shown}, and SOCKS support is not installed, so "
                   f"nothing can be sent to {server}. Install it: pip install \"httpx[socks]\" "
                   f"(or unset {var} for this process).")
    else:
        message = (f"{var} names a proxy that cannot be used{shown}: give an http://, https:// "
                   f"or socks5:// URL (or unset {var} for this process).")
    error = ProviderUnavailableError(message)
    error.retryable = False
    return error
