"""Errors that say what is really wrong, as a new user meets them, over real loopback HTTP: a
model without the capability asked for (and the models that have it), and a server that is not
the API the host was set up for (proxies: ``test_proxy_errors.py``)."""

from __future__ import annotations

import base64
import http.server
import io
import threading

import pytest
from PIL import Image

from gleitzeit_nb import batch
from gleitzeit_nb.errors import CapabilityError, ModelNotFoundError, ProviderResponseError
from gleitzeit_nb.providers import OllamaProvider, OpenAICompatibleProvider

from .conftest import chat_params
from .openai_fake import MODELS, FakeServer, respond

def png_b64() -> str:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "teal").save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def with_image(model: str) -> dict:
    params = chat_params("What is this?", model=model)
    params["messages"][0]["images"] = [png_b64()]
    return params


# -- 1. capability mismatches ------------------------------------------------------------------

async def test_embedding_with_a_chat_model_names_the_embedding_models(provider, sim):
    with pytest.raises(CapabilityError) as info:
        await provider.handle_request("embed", {"model": "llama3.2:latest", "input": "x"})
    err = info.value
    assert (err.model, err.capability, err.candidates) == (
        "llama3.2:latest", "embedding", ["nomic-embed-text:latest"])
    assert isinstance(err, ProviderResponseError) and err.status_code == 500
    msg = str(err)
    assert "this model does not support embeddings" in msg  # the server's own words
    assert "'llama3.2:latest' cannot make embeddings; models on this server that can: " \
           "nomic-embed-text:latest." in msg
    assert "memory" not in msg and "num_ctx" not in msg


async def test_an_image_for_a_text_only_model_names_the_vision_models(provider, sim):
    for streamed in (False, True):
        with pytest.raises(CapabilityError) as info:
            if streamed:
                await provider.stream_request("chat", with_image("llama3.2:latest"))
            else:
                await provider.handle_request("chat", with_image("llama3.2:latest"))
        assert info.value.capability == "vision"
        assert sorted(info.value.candidates) == ["gemma3:latest", "llava:latest"]
        assert "'llama3.2:latest' cannot read images; models on this server that can:" \
               in str(info.value)
    # newer Ollama says it with a 500: still no "out of memory" advice
    sim.inject("http_error", status=500, message="Failed to create new sequence: failed to "
               "process inputs: this model is missing data required for image input")
    with pytest.raises(CapabilityError) as info:
        await provider.handle_request("chat", with_image("llama3.2:latest"))
    assert info.value.capability == "vision" and "num_ctx" not in str(info.value)


async def test_chat_with_an_embedding_model_and_no_capable_model_installed():
    from gleitzeit_nb.testing import OllamaSimulator

    with OllamaSimulator(models=["nomic-embed-text", "all-minilm"]) as sim:
        async with OllamaProvider(base_url=sim.url, max_retries=0) as p:
            with pytest.raises(CapabilityError) as info:
                await p.handle_request("chat", chat_params(model="nomic-embed-text:latest"))
    assert info.value.capability == "completion" and info.value.candidates == []
    assert "'nomic-embed-text:latest' cannot chat: pull a chat model, e.g. `ollama pull " \
           "llama3.2`." in str(info.value)


@pytest.mark.parametrize("server_error, memory", [
    ("CUDA error: out of memory", True),
    ("model requires more system memory (12.0 GiB) than is available (4.1 GiB)", True),
    ("llama runner process has terminated: exit status 2", False),
])
async def test_the_memory_hint_only_for_memory_errors(provider, sim, server_error, memory):
    sim.inject("http_error", status=500, message=server_error)
    with pytest.raises(ProviderResponseError) as info:
        await provider.handle_request("chat", chat_params())
    assert ("num_ctx" in str(info.value)) is memory and "ollama serve" in str(info.value)


async def test_the_openai_api_says_the_same(sim):
    async with OpenAICompatibleProvider(base_url=f"{sim.url}/v1", max_retries=0) as p:
        with pytest.raises(CapabilityError) as info:
            await p.handle_request("embed", {"model": "llama3.2:latest", "input": "x"})
        assert info.value.capability == "embedding"
        assert info.value.candidates == ["nomic-embed-text:latest"]  # Ollama's own list
        assert "'llama3.2:latest' cannot make embeddings; models on this server that can: " \
               "nomic-embed-text:latest." in str(info.value)
        with pytest.raises(CapabilityError) as info:
            await p.handle_request("chat", with_image("llama3.2:latest"))
        assert sorted(info.value.candidates) == ["gemma3:latest", "llava:latest"]


def test_embed_speaks_of_texts(sim):
    with pytest.raises(CapabilityError) as info:
        batch.embed(["a", "b", "c"], model="llama3.2", host=sim.url, progress=False)
    msg = str(info.value)
    assert msg.startswith("Embedding texts 0–2: Ollama at ") and "row" not in msg
    assert "models on this server that can: nomic-embed-text:latest" in msg
    with pytest.raises(CapabilityError, match=r"^Embedding text \d: "):
        batch.embed(["a", "b"], model="llama3.2", host=sim.url, batch_size=1, progress=False)


def test_a_batch_stops_at_a_capability_error(sim, tmp_path):
    paths = [tmp_path / f"{i}.png" for i in range(3)]
    for path in paths:
        Image.new("RGB", (8, 8), "teal").save(path)
    with pytest.raises(CapabilityError, match=r"^Batch row .*'llama3.2:latest' cannot read "
                                              r"images; models on this server that can: "):
        batch.run_batch(paths, "What colour is this?", images=True, model="llama3.2",
                        host=sim.url, on_error="collect", progress=False)


# -- 2. a server that is not what the API expects ----------------------------------------------

LLAMA_404 = {"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}}


async def test_the_ollama_api_at_an_openai_compatible_server():
    async with FakeServer() as fake:  # llama.cpp's answers: /api/* 404, /v1/models a list
        fake.script += [respond(404, LLAMA_404), respond(200, MODELS), respond(404, LLAMA_404)]
        async with OllamaProvider(base_url=fake.root, max_retries=0) as p:
            with pytest.raises(ProviderResponseError) as info:
                await p.handle_request("chat", chat_params())
    assert not isinstance(info.value, ModelNotFoundError)  # "File Not Found" names no model
    assert str(info.value) == (
        f"The server at {fake.root} answered HTTP 404 to /api/chat: File Not Found. It looks "
        f"like an OpenAI-compatible server, not Ollama: use host {fake.root}/v1 "
        "(or api='openai').")
    # the health check and the chat: one probe each
    assert fake.paths() == ["/api/version", "/v1/models", "/api/chat", "/v1/models"]


@pytest.fixture
def web_server(tmp_path):
    """A plain web server (Python's http.server on an empty folder)."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


async def test_the_apis_at_a_plain_web_server(web_server):
    async with OllamaProvider(base_url=web_server, max_retries=0) as p:
        with pytest.raises(ProviderResponseError, match=r"HTTP 404 to /api/(tags|ps): a web "
                           r"page titled 'Error response'\. It is a web server: check "
                           r"OLLAMA_HOST \(or host=\)"):
            await p.list_models()  # GETs: 404 pages
        with pytest.raises(ProviderResponseError, match="HTTP 501 to /api/chat.* It is a web "
                                                        "server: check OLLAMA_HOST"):
            await p.handle_request("chat", chat_params())  # POST: 501 page
    async with OpenAICompatibleProvider(base_url=f"{web_server}/v1", max_retries=0) as p:
        with pytest.raises(ProviderResponseError, match="It is a web server, not an "
                                                        "OpenAI-compatible API"):
            await p.handle_request("chat", chat_params())


async def test_the_openai_api_at_ollamas_native_root(sim):
    async with OpenAICompatibleProvider(base_url=f"{sim.url}/api", max_retries=0) as p:
        with pytest.raises(ProviderResponseError) as info:
            await p.handle_request("chat", chat_params())
    assert f"It is Ollama's own API, not the OpenAI-compatible one: use host {sim.url}/v1 " \
           f"(or api='ollama' with host {sim.url})." in str(info.value)


async def test_an_ollama_without_the_endpoint_or_a_v1_host(provider, sim):
    sim.inject("http_error", path="/api/embed", status=404, message="404 page not found")
    with pytest.raises(ProviderResponseError, match=r"This Ollama \(0\.12\.0\) does not know "
                                                    "that endpoint: update it"):
        await provider.handle_request("embed", {"model": "nomic-embed-text", "input": "x"})
    async with OllamaProvider(base_url=f"{sim.url}/v1", max_retries=0) as p:
        with pytest.raises(ProviderResponseError, match="A host ending in /v1 is the "
                                                        "OpenAI-compatible API: use api='openai'"):
            await p.handle_request("chat", chat_params())


async def test_the_ollama_api_reading_a_web_page():
    page = respond(200, raw=b"<!doctype html><html><head><title>Home</title></head></html>",
                   ctype="text/html")
    async with FakeServer() as fake:  # a web app that answers every path with its page
        fake.script += [page] * 3
        async with OllamaProvider(base_url=fake.root, max_retries=0) as p:
            for call in (p.handle_request, p.stream_request):
                with pytest.raises(ProviderResponseError, match="sent a reply to /api/chat that "
                                   "is not a JSON object: a web page titled 'Home'. Is "
                                   "OLLAMA_HOST pointing at an Ollama server?"):
                    await call("chat", chat_params())


def test_no_model_for_the_job_says_so_and_how_to_get_one():
    import gleitzeit_nb
    from gleitzeit_nb.errors import ModelNotFoundError
    from gleitzeit_nb.testing import OllamaSimulator

    with OllamaSimulator(models=["llama3.2"]) as sim:
        with pytest.raises(ModelNotFoundError) as info:
            gleitzeit_nb.embed(["x"], host=sim.url, progress=False)
    message = str(info.value)
    assert "No embedding model is available" in message
    assert "(it has: llama3.2:latest)" in message and "`ollama pull nomic-embed-text`" in message
    assert "pick an installed model" not in message  # a chat model is no answer to that
