"""Prompts that fit, against the real llama.cpp server (SmolLM2, 8,192 tokens over 4 slots):
the context size read from ``/props``, a prompt longer than it refused before sending, the
server's own answer to the same prompt, and the token estimate against its tokenizer."""

from __future__ import annotations

import asyncio
import warnings

import pytest

import gleitzeit_nb
from gleitzeit_nb.app.tokens import OVERSHOOT, UNDERSHOOT, estimate_tokens
from gleitzeit_nb.core.backend import ChatRequest
from gleitzeit_nb.core.errors import ContextLengthError
from gleitzeit_nb.providers import OpenAICompatibleProvider

from .conftest import _llama_server
from .text_samples import ENGLISH, samples

#: SmolLM2 is an English model: other languages take it up to 2x the estimate.
ENGLISH_KINDS = ("English prose", "Python code", "DataFrame to_string", "DataFrame describe()",
                 "CSV", "JSON")
LONG = ENGLISH * 8  # ~3,700 tokens: almost twice a slot's 2,048


@pytest.fixture(scope="module")
def llama(request):
    """This module's own server (8,192 tokens over 4 slots, as the shared one): its long
    prompts fill the slots' caches, which would change how the shared server batches later
    requests, and so the greedy text of the tests that compare slots."""
    return _llama_server(request, slots=4, embedding=False)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_the_context_size_is_read_from_the_server(llama):
    async def read():
        async with OpenAICompatibleProvider(base_url=llama.v1) as provider:
            return await provider.context_size("smollm2")

    info = asyncio.run(read())
    per_slot = llama.props()["default_generation_settings"]["n_ctx"]
    assert info.tokens == per_slot == 8192 // 4  # --ctx-size is shared by the slots
    assert {s["n_ctx"] for s in llama.slots()} == {per_slot}
    assert not info.adjustable and info.source == "each of the server's 4 slots"


def test_a_prompt_longer_than_the_context_is_refused_before_sending(llama):
    before = llama.requests_started()
    with pytest.raises(ContextLengthError) as err:
        gleitzeit_nb.chat(LONG, host=llama.v1, model="smollm2", display=None, remember=False)
    assert llama.requests_started() == before  # nothing reached the server
    message = str(err.value)
    assert message.startswith(f"The prompt is about {err.value.tokens:,} tokens (estimated)")
    assert "context size of 2,048 tokens (each of the server's 4 slots)" in message
    assert "nothing was sent" in message and "--ctx-size" in message
    assert "a shorter prompt" in message and "{df:summary}" not in message  # (no table in it)

    # The same prompt sent anyway: the server refuses it with its own message...
    raw = llama.client.post("/v1/chat/completions", json=llama.chat_body(user(LONG)))
    assert llama.requests_started() == before + 1
    assert raw.status_code == 400
    server_text = raw.json()["error"]["message"]
    assert server_text.startswith("request (") and "exceeds the available context size " \
                                                   "(2048 tokens)" in server_text

    # ... which the provider (past our check) reports with the fix
    async def send():
        async with OpenAICompatibleProvider(base_url=llama.v1, max_retries=0) as provider:
            stream = provider.stream_chat(ChatRequest(model="smollm2", messages=user(LONG)))
            try:
                await stream
            finally:
                await stream.aclose()

    with pytest.raises(ContextLengthError) as server_err:
        asyncio.run(send())
    assert server_text in str(server_err.value) and "--ctx-size" in str(server_err.value)
    assert not server_err.value.estimated and server_err.value.limit == 2048
    assert server_err.value.tokens == raw.json()["error"]["n_prompt_tokens"]


def test_num_ctx_is_not_silently_ignored(llama):
    with pytest.warns(UserWarning, match=r"num_ctx=8192 has no effect on the server at .*: its "
                                         r"context is fixed when it starts, here 2,048 tokens "
                                         r".*--ctx-size") as caught:
        reply = gleitzeit_nb.chat("Say hi.", host=llama.v1, model="smollm2", num_ctx=8192,
                                  max_tokens=4, temperature=0, display=None, remember=False)
    assert reply.text and caught[0].filename == __file__
    with warnings.catch_warnings():  # said once per server
        warnings.simplefilter("error")
        gleitzeit_nb.chat("Say hi.", host=llama.v1, model="smollm2", num_ctx=8192,
                          max_tokens=4, temperature=0, display=None, remember=False)


def test_a_reply_stopped_by_the_context_says_so(llama):
    """No max_tokens and a prompt that leaves ~100 tokens: generation stops at the context."""
    words = (ENGLISH * 5).split(" ")
    count = len(llama.client.post("/tokenize", json={"content": ENGLISH * 5}).json()["tokens"])
    prompt = " ".join(words[:len(words) * 1900 // count]) + "\nNow repeat the text above."
    with pytest.warns(UserWarning, match="close to the context size of 2,048"):
        reply = gleitzeit_nb.chat(prompt, host=llama.v1, model="smollm2", temperature=0, seed=1,
                                  display=None, remember=False)
    assert reply.stats["finish_reason"] == "length" and reply.stats["length_limit"] == "context"
    assert reply.stats["input_tokens"] + reply.stats["output_tokens"] >= 2040


@pytest.mark.parametrize("kind", ENGLISH_KINDS)
def test_the_estimate_is_within_its_stated_error(llama, kind):
    text = samples()[kind]
    tokens = len(llama.client.post("/tokenize", json={"content": text}).json()["tokens"])
    assert 1 / OVERSHOOT <= tokens / estimate_tokens(text) <= UNDERSHOOT
