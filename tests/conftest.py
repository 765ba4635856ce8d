"""Shared fixtures: a simulator on loopback per test, and a provider pointed at it; the real
llama.cpp server (``llama``, ``llama_keyed``, ``llama_tools``)."""

from __future__ import annotations

import os
import socket

import pytest

from gleitzeit_nb.providers import OllamaProvider
from gleitzeit_nb.testing import OllamaSimulator
from .llamacpp import TOOLS_TEMPLATE, LlamaServer, missing


@pytest.fixture
def sim(request):
    """A fresh simulator per test; in modules with ``SHARED_SIM = True`` (kernel tests, whose
    kernel points at one simulator) the module's shared one, reset."""
    if getattr(request.module, "SHARED_SIM", False):
        shared = request.getfixturevalue("shared_sim")
        shared.reset()
        shared.token_delay = 0.0
        yield shared
        return
    with OllamaSimulator() as s:
        yield s


@pytest.fixture
async def provider(sim):
    p = OllamaProvider(base_url=sim.url, timeout=5, chunk_timeout=2, retry_backoff=0.01)
    async with p:
        yield p


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens (connections are refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def chat_params(text: str = "Hello!", model: str = "llama3.2:latest", **kw):
    return {"model": model, "messages": [{"role": "user", "content": text}], **kw}


def generation_requests(sim) -> list:
    return [r for r in sim.requests if r.path == "/api/chat"]


@pytest.fixture(scope="module")
def shared_sim(request):
    """One simulator per test module (kernel tests); ``SIM_OPTIONS`` in the module configures it."""
    with OllamaSimulator(**getattr(request.module, "SIM_OPTIONS", {})) as s:
        yield s


@pytest.fixture
def blackhole_url():
    """A loopback URL whose connections never complete (listen queue full): connect timeouts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    for _ in range(4):  # more than the queue holds; later SYNs are dropped
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(server.getsockname())
        fillers.append(c)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    for c in fillers:
        c.close()
    server.close()


LLAMA_KEY = "sk-gleitzeit-test"


def require_llama() -> None:
    """Skip with the install hint when the real server is not installed; fail in CI (CI=true),
    where it must run."""
    if reason := missing():
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def llama_installed() -> None:
    """For tests that start their own LlamaServer: skipped (failed in CI) when not installed."""
    require_llama()


def _llama_server(request, **options) -> LlamaServer:
    """A started LlamaServer, stopped by a finalizer."""
    require_llama()
    server = LlamaServer(**options)
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="session")
def llama(request) -> LlamaServer:
    """The real llama.cpp server for the session: SmolLM2-135M, 4 slots, embeddings, no key."""
    return _llama_server(request, slots=4, embedding=True)


@pytest.fixture(scope="module")
def llama_keyed(request) -> LlamaServer:
    """The real llama.cpp server requiring ``Authorization: Bearer <.api_key>``."""
    return _llama_server(request, slots=1, embedding=False, api_key=LLAMA_KEY)


@pytest.fixture(scope="module")
def llama_tools(request) -> LlamaServer:
    """The real llama.cpp server with a chat template that has tools (``TOOLS_TEMPLATE``): it
    parses the model's calls into OpenAI ``tool_calls``."""
    return _llama_server(request, slots=1, embedding=False, chat_template=TOOLS_TEMPLATE)
