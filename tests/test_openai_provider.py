"""``OpenAICompatibleProvider`` against a real llama.cpp server (SmolLM2-135M, greedy decoding).

Faults a real server cannot produce on demand are in ``test_openai_faults.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import pytest

from gleitzeit_nb.core import (LLM_PROTOCOL_V1, ExecutionEngine, ProtocolProviderRegistry, Task,
                               TaskStatus)
from gleitzeit_nb.core.backend import ChatRequest, EmbedRequest
from gleitzeit_nb.errors import ProviderResponseError, ProviderUnavailableError
from gleitzeit_nb.providers import OpenAICompatibleProvider

from .conftest import LLAMA_KEY as KEY
from .llamacpp import MODEL, LlamaServer

GREEDY = {"temperature": 0, "seed": 1}
MESSAGES = [{"role": "system", "content": "You answer briefly."},
            {"role": "user", "content": "Name three fruits."}]
STORY = [{"role": "user", "content": "Tell me a long story about a lighthouse keeper."}]


@pytest.fixture
def server(llama: LlamaServer) -> str:
    """The session's llama.cpp (4 slots, metrics, embeddings): its root URL."""
    return llama.url


@pytest.fixture
def keyed(llama_keyed: LlamaServer) -> str:
    """llama.cpp requiring ``Authorization: Bearer KEY``: its root URL."""
    return llama_keyed.url


def requests_processing(url: str) -> float:
    """``llamacpp:requests_processing`` from ``/metrics`` (requests generating now)."""
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("llamacpp:requests_processing"):
            return float(line.split()[-1])
    raise AssertionError("/metrics has no llamacpp:requests_processing")


@pytest.fixture
async def provider(server):
    async with OpenAICompatibleProvider(base_url=f"{server}/v1", timeout=60,
                                        chunk_timeout=30) as p:
        yield p


async def raw_chat(root: str, messages: list, **settings) -> dict:
    """The same request without the provider: plain httpx, not streamed."""
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(f"{root}/v1/chat/completions", json={
            "model": MODEL, "messages": messages, **settings})
    response.raise_for_status()
    return response.json()


async def test_streamed_text_equals_the_raw_reply(server, provider):
    raw = await raw_chat(server, MESSAGES, max_tokens=24, **GREEDY)
    stream = await provider.stream_chat(ChatRequest(model=MODEL, messages=MESSAGES,
                                                    max_tokens=24, **GREEDY))
    chunks = [chunk async for chunk in stream]
    assert stream.text and stream.text == raw["choices"][0]["message"]["content"]
    assert "".join(c.content for c in chunks) == stream.text and len(chunks) > 3
    assert chunks[-1].done and chunks[-1].usage is stream.usage and stream.done
    usage = stream.usage
    assert (usage.input_tokens, usage.output_tokens, usage.finish_reason) == (
        raw["usage"]["prompt_tokens"], raw["usage"]["completion_tokens"],
        raw["choices"][0]["finish_reason"])
    assert usage.prompt_seconds > 0 and usage.generation_seconds > 0  # llama.cpp's timings


async def test_handle_request_through_the_registry_and_engine(server, provider):
    registry = ProtocolProviderRegistry()
    registry.register_protocol(LLM_PROTOCOL_V1)
    registry.register_provider(provider_id="openai-1", protocol_id="llm/v1",
                               provider_instance=provider)
    params = {"model": MODEL, "system": "You answer briefly.", "max_tokens": 16,
              "messages": MESSAGES[1:], **GREEDY}
    result = await ExecutionEngine(registry).execute_task(
        Task(id="t1", protocol="llm/v1", method="chat", params=params))
    assert result.status == TaskStatus.COMPLETED, result.error
    raw = await raw_chat(server, MESSAGES, max_tokens=16, **GREEDY)
    assert result.result["response"] == raw["choices"][0]["message"]["content"]
    assert result.result["tokens_used"] == raw["usage"]["completion_tokens"] > 0
    assert result.result["finish_reason"] == raw["choices"][0]["finish_reason"]


async def test_schema_format_gives_json_matching_the_schema(provider):
    schema = {"type": "object", "required": ["name", "age"], "additionalProperties": False,
              "properties": {"name": {"type": "string", "maxLength": 12},
                             "age": {"type": "integer"}}}
    result = await provider.handle_request("chat", {
        "model": MODEL, "format": schema, "max_tokens": 60, **GREEDY,
        "messages": [{"role": "user", "content": "Invent a person; give name and age."}]})
    value = json.loads(result["response"])
    assert set(value) == {"name", "age"} and isinstance(value["age"], int)
    assert isinstance(value["name"], str) and len(value["name"]) <= 12


async def test_embeddings_in_order_576_dimensions(server, provider):
    texts = ["a lighthouse", "a notebook", "the sea"]
    result = await provider.embed(EmbedRequest(model=MODEL, input=texts))
    assert len(result.vectors) == 3 and {len(v) for v in result.vectors} == {576}
    async with httpx.AsyncClient(timeout=60) as client:
        one = (await client.post(f"{server}/v1/embeddings",
                                 json={"model": MODEL, "input": texts[1]})).json()
    assert result.vectors[1] == pytest.approx(one["data"][0]["embedding"], abs=1e-4)
    assert result.vectors[0] != pytest.approx(result.vectors[1], abs=1e-4)
    assert result.input_tokens and result.model == MODEL
    via_protocol = await provider.handle_request("embed", {"model": MODEL, "input": "the sea"})
    assert via_protocol["embeddings"][0] == pytest.approx(result.vectors[2], abs=1e-4)


async def test_models_slots_and_health(provider):
    models = await provider.list_models()
    assert [m.name for m in models] == [MODEL]
    assert models[0].capabilities is None and models[0].can("embedding") is None
    assert await provider.capacity_hint() == 4
    assert (await provider.health_check()) == {"healthy": True, "url": provider.base_url,
                                               "models": [MODEL]}


async def wait_idle(root: str, within: float = 1.0) -> float:
    """Seconds until the server generates nothing; fails after ``within``."""
    started = time.monotonic()
    while requests_processing(root) != 0:
        assert time.monotonic() - started < within, "the server is still generating"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_closing_a_stream_stops_generation(server, provider):
    stream = await provider.stream_chat(ChatRequest(model=MODEL, messages=STORY,
                                                    max_tokens=400, **GREEDY))
    for _ in range(3):
        await stream.__anext__()
    assert requests_processing(server) == 1
    await stream.aclose()
    await wait_idle(server)
    assert stream.text and not stream.done


async def test_cancelling_the_reading_task_stops_generation(server, provider):
    stream = await provider.stream_request("chat", {"model": MODEL, "messages": STORY,
                                                    "max_tokens": 400, **GREEDY})
    first = asyncio.Event()

    async def read() -> None:
        async for _ in stream:
            first.set()

    task = asyncio.create_task(read())
    await asyncio.wait_for(first.wait(), 30)
    assert requests_processing(server) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await wait_idle(server)


async def test_vision_on_a_text_model_is_a_capability_error(provider):
    from PIL import Image

    with pytest.raises(ProviderResponseError) as info:
        await provider.handle_request("vision", {
            "model": MODEL, "images": [Image.new("RGB", (16, 16), "teal")],
            "messages": [{"role": "user", "content": "What colour is this?"}]})
    assert info.value.status_code == 500 and "image input is not supported" in str(info.value)
    assert "cannot read images" in str(info.value) and "--mmproj" in str(info.value)


async def test_wrong_path_and_no_server(server, dead_url):
    async with OpenAICompatibleProvider(base_url=f"{server}/api", max_retries=0) as p:
        with pytest.raises(ProviderResponseError) as info:
            await p.handle_request("chat", {"model": MODEL, "messages": MESSAGES})
    assert info.value.status_code == 404
    assert "has no /api/chat/completions: is the base URL right?" in str(info.value)
    dead = dead_url.removeprefix("http://")
    async with OpenAICompatibleProvider(base_url=dead, max_retries=0) as p:
        assert p.base_url == f"http://{dead}/v1"
        with pytest.raises(ProviderUnavailableError) as info:
            await p.handle_request("chat", {"model": MODEL, "messages": MESSAGES})
    assert str(info.value) == (
        f"Could not reach the OpenAI-compatible server at http://{dead}/v1 (connection refused). "
        "Start it (e.g. `llama-server -m MODEL.gguf --port 8080`) or check the base URL: it "
        "usually ends in /v1.")


async def test_the_ollama_api_pointed_at_llama_server(server):
    from gleitzeit_nb.providers import OllamaProvider

    async with OllamaProvider(base_url=server, max_retries=0) as p:
        with pytest.raises(ProviderResponseError) as info:
            await p.handle_request("chat", {"model": MODEL, "messages": MESSAGES})
    assert str(info.value) == (
        f"The server at {server} answered HTTP 404 to /api/chat: File Not Found. It looks like "
        f"an OpenAI-compatible server, not Ollama: use host {server}/v1 (or api='openai').")


async def test_api_key_required_sent_and_never_shown(keyed, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    params = {"model": MODEL, "messages": MESSAGES, "max_tokens": 4, **GREEDY}
    errors = []
    async with OpenAICompatibleProvider(base_url=f"{keyed}/v1") as p:
        with pytest.raises(ProviderResponseError) as info:
            await p.handle_request("chat", params)
        assert await p.capacity_hint() is None  # /props needs the key too
    errors.append(info.value)
    assert info.value.status_code == 401 and "needs an API key" in str(info.value)
    assert "api_key_env='NAME_OF_ENV_VAR'" in str(info.value) and "api_key=" in str(info.value)
    async with OpenAICompatibleProvider(base_url=f"{keyed}/v1", api_key="sk-wrong-999") as p:
        with pytest.raises(ProviderResponseError) as info:
            await p.handle_request("chat", params)
    errors.append(info.value)
    assert "was not accepted" in str(info.value) and "sk-wrong-999" not in str(info.value)
    async with OpenAICompatibleProvider(base_url=f"{keyed}/v1", api_key=KEY) as p:
        assert (await p.handle_request("chat", params))["response"]
        assert await p.capacity_hint() == 1
        assert [m.name for m in await p.list_models()] == [MODEL]
        with pytest.raises(ProviderResponseError) as info:  # no embeddings on this server
            await p.embed(EmbedRequest(model=MODEL, input=["x"]))
        errors.append(info.value)
        assert info.value.status_code == 501 and "cannot make embeddings" in str(info.value)
        shown = [repr(p), str(vars(p)), str(vars(p._transport)), repr(p._transport.client()),
                 repr(p._transport.client().headers)]
    assert p._transport.client().headers["authorization"] == f"Bearer {KEY}"  # it was sent
    shown += [repr(e) for e in errors] + [str(e) for e in errors]
    shown += [r.getMessage() for r in caplog.records] + [caplog.text]
    assert caplog.records and not [text for text in shown if KEY in text]
