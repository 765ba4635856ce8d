"""Thinking on the OpenAI-compatible API (the simulator's /v1, a thinking model): shown when
asked for, and turned off by think=False, not merely left unasked."""

from __future__ import annotations

from gleitzeit_nb.providers import OpenAICompatibleProvider
from gleitzeit_nb.testing import OllamaSimulator


async def test_think_true_shows_thinking_and_false_turns_it_off():
    with OllamaSimulator() as sim:
        async with OpenAICompatibleProvider(base_url=sim.url + "/v1") as p:
            messages = [{"role": "user", "content": "Why is the sky blue? [[tokens=5]]"}]
            on = await p.handle_request("chat", {"model": "qwen3", "messages": messages,
                                                 "think": True})
            off = await p.stream_request("chat", {"model": "qwen3", "messages": messages,
                                                  "think": False})
            await off.collect()
        assert on["thinking"] and on["response"]
        assert off.thinking == "" and off.text
        body = [r.body for r in sim.requests if r.path == "/v1/chat/completions"][-1]
        assert body["chat_template_kwargs"] == {"enable_thinking": False}
