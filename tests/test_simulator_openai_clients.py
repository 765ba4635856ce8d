"""The simulator's OpenAI-compatible API as the official ``openai`` client sees it."""

from __future__ import annotations

import asyncio

import openai
import pytest

from gleitzeit_nb.testing import OllamaSimulator

from .sim_data import Person, image_b64

CHAT = "/v1/chat/completions"
KEY = "sk-test-123"


def oa(sim: OllamaSimulator, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=sim.url + "/v1", api_key=key, max_retries=0, timeout=5)


def test_official_openai_client(sim):
    sim.api_key = KEY
    client = oa(sim)
    assert [m.id for m in client.models.list()] == sim.catalog.names()
    resp = client.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "Hi"}])
    text = resp.choices[0].message.content
    assert text.startswith('You said: "Hi".') and resp.choices[0].finish_reason == "stop"
    assert resp.usage.completion_tokens == 40
    stream = client.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "Hi"}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == text
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == resp.usage.total_tokens
    think = client.chat.completions.create(model="qwen3", messages=[{"role": "user", "content": "Hi"}])
    assert think.choices[0].message.model_extra["reasoning_content"]
    parsed = client.chat.completions.parse(model="llama3.2", response_format=Person,
                                           messages=[{"role": "user", "content": "A person"}])
    assert isinstance(parsed.choices[0].message.parsed, Person)
    png = "data:image/png;base64," + image_b64((5, 6))
    seen = client.chat.completions.create(model="llava", messages=[{"role": "user", "content": [
        {"type": "text", "text": "?"}, {"type": "image_url", "image_url": {"url": png}}]}])
    assert seen.choices[0].message.content.startswith("I see a PNG image of 5x6 pixels (RGB).")
    emb = client.embeddings.create(model="nomic-embed-text", input=["a", "b"])  # base64 on the wire
    floats = client.embeddings.create(model="nomic-embed-text", input=["a", "b"], encoding_format="float")
    assert len(emb.data) == 2 and emb.data[1].embedding == pytest.approx(floats.data[1].embedding, abs=1e-6)
    assert {r.bearer for r in sim.requests} == {KEY}  # the client sent the key every time

    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="ghost", messages=[{"role": "user", "content": "x"}])
    assert err.value.code == "model_not_found"
    with pytest.raises(openai.AuthenticationError):
        oa(sim, "sk-wrong").models.list()
    sim.inject("http_error", status=503, message="overloaded")
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 503
    assert err.value.body == {"message": "overloaded", "type": "server_error", "code": 503}
    sim.inject("mid_stream_error", after=2, message="boom")
    with pytest.raises(openai.APIError, match="boom"):
        list(client.chat.completions.create(model="llama3.2", stream=True,
                                            messages=[{"role": "user", "content": "x"}]))


async def test_official_async_client_cancellation_is_recorded(sim):
    client = openai.AsyncOpenAI(base_url=sim.url + "/v1", api_key="unused", max_retries=0)
    stream = await client.chat.completions.create(model="qwen3", stream=True,
                                                  messages=[{"role": "user", "content": "Hi"}])
    chunks = [c async for c in stream]
    assert chunks[1].choices[0].delta.model_extra["reasoning_content"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    sim.token_delay = 0.05

    async def consume() -> None:
        async for _ in await client.chat.completions.create(
                model="llama3.2", stream=True, messages=[{"role": "user", "content": "Hi"}]):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.15)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(sim.wait_for_disconnects, 1, 1.0)
    assert sim.disconnects[0].path == CHAT and sim.disconnects[0].chunks_sent >= 3
    await client.close()
