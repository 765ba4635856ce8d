"""Against a real Ollama server, when one answers at OLLAMA_HOST (else skipped, with the reason).

Each test uses the smallest installed model with the capability it needs and skips, saying
which, when there is none. Nothing is pulled: these tests only read what the server has.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from PIL import Image

from gleitzeit_nb.errors import ModelNotFoundError
from gleitzeit_nb.providers import OllamaProvider
from gleitzeit_nb.providers.ollama.host import host_from_env


def _server() -> str | None:
    url = host_from_env()
    try:
        reply = httpx.get(f"{url}/api/version", timeout=1.0, trust_env=False)
        reply.raise_for_status()
    except (httpx.HTTPError, ValueError):
        return None
    return url


URL = _server()
pytestmark = pytest.mark.skipif(
    URL is None, reason=f"no Ollama answers at {host_from_env()} (start `ollama serve` to run "
                        "the live tests)")


@pytest.fixture
async def live():
    async with OllamaProvider(base_url=URL, timeout=300) as provider:
        yield provider


async def smallest(provider: OllamaProvider, capability: str) -> str:
    models = [m for m in await provider.list_models() if m.can(capability)]
    if not models:
        pytest.skip(f"the Ollama at {URL} has no model with the {capability!r} capability")
    return min(models, key=lambda m: m.size).name


async def thinks(provider: OllamaProvider, model: str) -> bool:
    info = next(m for m in await provider.list_models() if m.name == model)
    return bool(info.can("thinking"))


async def test_live_chat_stream_stats_and_stop(live):
    model = await smallest(live, "completion")
    params = {"model": model, "temperature": 0, "seed": 1, "max_tokens": 16,
              "messages": [{"role": "user", "content": "Count from 1 to 20."}]}
    if await thinks(live, model):  # a thinking model spends a small budget on thinking
        params["think"] = False
    result = await live.handle_request("chat", params)
    assert result["response"] and 0 < result["tokens_used"] <= 16
    assert result["finish_reason"] in ("length", "stop")
    stream = await live.stream_request("chat", {**params, "max_tokens": 400})
    async for chunk in stream:
        if stream.chunks >= 3:
            break
    await stream.aclose()
    assert stream.chunks == 3 and not stream.done


async def test_live_missing_model_names_the_pull(live):
    with pytest.raises(ModelNotFoundError, match="ollama pull gleitzeit-no-such-model"):
        await live.handle_request("chat", {"model": "gleitzeit-no-such-model",
                                           "messages": [{"role": "user", "content": "hi"}]})


async def test_live_vision(live):
    model = await smallest(live, "vision")
    img = Image.new("RGB", (256, 256), "white")
    img.paste((220, 20, 20), (64, 64, 192, 192))
    result = await live.handle_request("vision", {
        "model": model, "images": [img], "temperature": 0, "max_tokens": 40,
        "messages": [{"role": "user", "content": "What colour is the square? One word."}]})
    assert result["response"].strip()


async def test_live_embed(live):
    model = await smallest(live, "embedding")
    result = await live.handle_request("embed", {"model": model, "input": ["a", "b"]})
    assert len(result["embeddings"]) == 2 and len(result["embeddings"][0]) > 8


async def test_live_concurrent_requests_share_the_pool(live):
    model = await smallest(live, "completion")
    params = {"model": model, "max_tokens": 4,
              "messages": [{"role": "user", "content": "Say hi."}]}
    results = await asyncio.gather(*(live.handle_request("chat", params) for _ in range(3)))
    assert all(r["response"] for r in results)
