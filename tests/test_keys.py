"""API keys: named by an environment variable, sent only to the server they belong to, and
never shown (reprs, vars, errors). Real HTTP to the simulator, which records the header."""

from __future__ import annotations

import asyncio

from gleitzeit_nb.app.connections import Connections
from gleitzeit_nb.app.settings import Settings
from gleitzeit_nb.testing import OllamaSimulator

KEY = "sk-only-for-a-123"


def chat(backend) -> None:
    async def go() -> None:
        await backend.handle_request("chat", {"model": "llama3.2", "messages": [
            {"role": "user", "content": "hi [[tokens=2]]"}]})
        await backend.aclose()

    asyncio.run(go())


def test_a_key_goes_to_its_server_only_and_never_shows(monkeypatch):
    monkeypatch.setenv("GZ_KEY_A", KEY)
    with OllamaSimulator() as a, OllamaSimulator() as b:
        conn = Connections(Settings(host=a.url, api_key_env="GZ_KEY_A"))
        for backend in (conn.backend(), conn.backend(a.url + "/v1", api_key_env="GZ_KEY_A")):
            chat(backend)
            shown = repr(backend) + repr(vars(backend)) + repr(vars(backend._transport))
            assert KEY not in shown
        chat(conn.backend(b.url))  # another server named per call: no key unless named there
        assert {r.bearer for r in a.requests} == {KEY}
        assert {r.bearer for r in b.requests} == {None}
        assert KEY not in repr(vars(conn)) + repr(conn._backends)


def test_a_missing_key_variable_says_which(monkeypatch):
    import pytest

    from gleitzeit_nb.errors import InvalidParamsError

    monkeypatch.delenv("GZ_KEY_UNSET", raising=False)
    conn = Connections(Settings(host="http://127.0.0.1:9/v1", api_key_env="GZ_KEY_UNSET"))
    with pytest.raises(InvalidParamsError, match="GZ_KEY_UNSET .* is not set"):
        conn.backend()
