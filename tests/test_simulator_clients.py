"""The simulator's fidelity: the official ``ollama`` client parses every reply; the CLI serves."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import sys
from pathlib import Path

import httpx
import ollama
import pytest

from .sim_data import HELLO, Person, image_b64

ROOT = Path(__file__).resolve().parents[1]


def test_official_sync_client(sim):
    client = ollama.Client(host=sim.url)
    assert "llama3.2:latest" in [m.model for m in client.list().models]
    show = client.show("llava")
    assert "vision" in show.capabilities and show.modelinfo["general.architecture"] == "llama"
    resp = client.chat(model="llama3.2", messages=HELLO)
    assert resp.message.content and resp.eval_count == 40 and resp.done_reason == "stop"
    parts = list(client.chat(model="llama3.2", messages=HELLO, stream=True))
    assert "".join(p.message.content for p in parts) == resp.message.content and parts[-1].done
    assert client.ps().models[0].name == "llama3.2:latest"
    think = client.chat(model="qwen3", messages=HELLO, think=True)
    assert think.message.thinking and think.message.content
    picture = base64.b64decode(image_b64((5, 6)))
    seen = client.chat(model="llava", messages=[{"role": "user", "content": "?", "images": [picture]}])
    assert seen.message.content.startswith("I see a PNG image of 5x6 pixels (RGB).")
    fmt = client.chat(model="llama3.2", messages=HELLO, format=Person.model_json_schema())
    Person.model_validate_json(fmt.message.content)
    gen = client.generate(model="llama3.2", prompt="Hi", options={"num_predict": 3})
    assert gen.response and gen.eval_count == 3 and gen.done_reason == "length"
    emb = client.embed(model="nomic-embed-text", input=["a", "b"])
    assert len(emb.embeddings) == 2 and len(emb.embeddings[0]) == 768
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="ghost", messages=HELLO)
    assert err.value.status_code == 404 and "not found" in err.value.error
    sim.inject("mid_stream_error", after=1, message="boom")
    with pytest.raises(ollama.ResponseError, match="boom"):
        list(client.chat(model="llama3.2", messages=HELLO, stream=True))
    sim.inject("http_error", status=503, message="overloaded")
    with pytest.raises(ollama.ResponseError) as err:
        list(client.generate(model="llama3.2", prompt="x", stream=True))
    assert (err.value.status_code, err.value.error) == (503, "overloaded")


async def test_official_async_client_and_cancellation(sim):
    client = ollama.AsyncClient(host=sim.url)
    assert len((await client.list()).models) == 5
    chunks = [c async for c in await client.chat(model="qwen3", messages=HELLO, think=True, stream=True)]
    assert chunks[0].message.thinking and chunks[-1].done and chunks[-1].eval_count > 40
    gen = await client.generate(model="llama3.2", prompt="Hello")
    assert gen.response.startswith('You said: "Hello".')
    assert len((await client.embed(model="nomic-embed-text", input="x")).embeddings[0]) == 768
    sim.token_delay = 0.05

    async def consume() -> None:
        async for _ in await client.chat(model="llama3.2", messages=HELLO, stream=True):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.15)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(sim.wait_for_disconnects, 1, 1.0)
    assert sim.disconnects[0].chunks_sent >= 2


def test_cli_serves_until_terminated():
    proc = subprocess.Popen([sys.executable, "-m", "gleitzeit_nb.testing", "--port", "0",
                             "--token-delay", "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("Ollama simulator listening on http://127.0.0.1:")
        assert httpx.get(f"{line.rsplit(' ', 1)[-1]}/api/version", timeout=5).json()["version"]
    finally:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
