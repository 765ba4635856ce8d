"""A proxy in the way, as a new user meets it: the message names the proxy (never its
password) and the variable that set it for the URL's scheme, and says to add the host to NO_PROXY
if it is local; a SOCKS proxy without ``socksio`` says what to install. Real HTTP to a fake
proxy on loopback (httpx sends it absolute-form requests, or CONNECT for https)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from gleitzeit_nb.errors import ProviderResponseError, ProviderUnavailableError
from gleitzeit_nb.providers import OllamaProvider, OpenAICompatibleProvider
from gleitzeit_nb.providers.http import PROXY_VARS

from .conftest import chat_params

REMOTE = "http://ollama.invalid:11434"  # not loopback: requests go through a configured proxy


# -- an HTTP proxy -----------------------------------------------------------------------------

class FakeProxy:
    """Answers every request (absolute-form or CONNECT) with one status; records the lines."""

    def __init__(self, status: int, reason: str, body: bytes = b"") -> None:
        self.status, self.reason, self.body = status, reason, body
        self.lines: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            self.lines.append(head[0])
            length = next((int(h.split(":")[1]) for h in head if h.lower().startswith(
                "content-length:")), 0)
            await reader.readexactly(length)
            writer.write(f"HTTP/1.1 {self.status} {self.reason}\r\nContent-Type: text/html\r\n"
                         f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
                         .encode() + self.body)
            await writer.drain()
        finally:
            writer.close()


@pytest.fixture
async def fake_proxy(request):
    proxy = FakeProxy(*request.param)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", 0)
    proxy.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    yield proxy
    server.close()


def use_proxy(monkeypatch, **variables: str) -> None:
    for name in PROXY_VARS + ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


SQUID_502 = (502, "Bad Gateway", b"<html><head><title>ERROR: The requested URL could not be "
             b"retrieved</title></head><body>...</body></html>")


@pytest.mark.parametrize("fake_proxy", [SQUID_502], indirect=True)
async def test_a_502_from_the_proxy_names_it_and_no_proxy(monkeypatch, fake_proxy):
    use_proxy(monkeypatch, HTTP_PROXY=fake_proxy.url.replace("//", "//user:secret@"))
    async with OllamaProvider(base_url=REMOTE, max_retries=1, retry_backoff=0.01) as p:
        with pytest.raises(ProviderResponseError) as info:
            await p.handle_request("chat", chat_params())
    msg = str(info.value)
    assert f"answered HTTP 502 to /api/chat through the proxy {fake_proxy.url} (from " \
           "HTTP_PROXY): a web page titled 'ERROR: The requested URL could not be retrieved'" \
           in msg
    assert "add ollama.invalid to NO_PROXY" in msg and "(Tried 2 times.)" in msg
    assert "secret" not in msg and "<html" not in msg
    assert f"POST {REMOTE}/api/chat HTTP/1.1" in fake_proxy.lines  # it did go through the proxy


@pytest.mark.parametrize("fake_proxy", [(407, "Proxy Authentication Required")], indirect=True)
async def test_a_407_asks_for_the_proxy_credentials(monkeypatch, fake_proxy):
    use_proxy(monkeypatch, ALL_PROXY=fake_proxy.url)
    async with OpenAICompatibleProvider(base_url=f"{REMOTE}/v1", max_retries=2) as p:
        with pytest.raises(ProviderResponseError) as info:
            await p.handle_request("chat", chat_params())
    assert info.value.status_code == 407
    assert str(info.value).startswith(f"The proxy {fake_proxy.url} (from ALL_PROXY) answered "
                                      "HTTP 407 to /chat/completions for the OpenAI-compatible "
                                      f"server at {REMOTE}/v1")
    assert "Put the proxy's user and password in ALL_PROXY" in str(info.value)
    assert fake_proxy.lines.count(f"POST {REMOTE}/v1/chat/completions HTTP/1.1") == 1


@pytest.mark.parametrize("fake_proxy", [(407, "Proxy Authentication Required")], indirect=True)
async def test_an_https_server_uses_https_proxy(monkeypatch, fake_proxy, dead_url):
    use_proxy(monkeypatch, HTTPS_PROXY=fake_proxy.url, HTTP_PROXY=dead_url)
    https = REMOTE.replace("http:", "https:")
    async with OllamaProvider(base_url=https, max_retries=2) as p:
        with pytest.raises(ProviderUnavailableError) as info:
            await p.handle_request("chat", chat_params())
    msg = str(info.value)
    assert f"The proxy {fake_proxy.url} (from HTTPS_PROXY) refused to connect to Ollama at " \
           f"{https}: 407 Proxy Authentication Required." in msg
    assert "HTTPS_PROXY (http://USER:PASSWORD@HOST:PORT)" in msg and not info.value.retryable
    # the health check's and the chat's tunnel, neither retried
    assert fake_proxy.lines.count("CONNECT ollama.invalid:11434 HTTP/1.1") == 2


# -- a SOCKS proxy without socksio -------------------------------------------------------------

async def test_a_socks_proxy_without_socksio(monkeypatch, sim):
    use_proxy(monkeypatch, ALL_PROXY="socks5://user:secret@127.0.0.1:1080")
    monkeypatch.setitem(sys.modules, "socksio", None)  # as when it is not installed
    for provider in (OllamaProvider(base_url=REMOTE),
                     OpenAICompatibleProvider(base_url=f"{REMOTE}/v1")):
        async with provider as p:
            with pytest.raises(ProviderUnavailableError) as info:
                await p.handle_request("chat", chat_params())
            assert (await p.health_check())["healthy"] is False
        msg = str(info.value)
        assert msg.startswith("ALL_PROXY names a SOCKS proxy (socks5://127.0.0.1:1080), and "
                              "SOCKS support is not installed")
        assert 'pip install "httpx[socks]"' in msg and "secret" not in msg
        assert not info.value.retryable
    async with OllamaProvider(base_url=sim.url) as p:  # a loopback server uses no proxy
        assert (await p.handle_request("chat", chat_params()))["response"]
