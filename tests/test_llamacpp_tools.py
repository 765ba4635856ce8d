"""Tool calls from the real llama.cpp server (SmolLM2-135M, greedy), and the provider's view of them.

The server needs a chat template with tools (``llama_tools``: ``TOOLS_TEMPLATE``); with
SmolLM2's own it drops ``tools`` and answers in text. The 135M model calls ``get_rows`` once the
conversation shows two earlier calls (``EXAMPLES``); asked plainly, or with
``tool_choice: "required"`` (its grammar still allows text before a call), it writes prose.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gleitzeit_nb.core.backend import ChatRequest, ToolCall
from gleitzeit_nb.providers import OpenAICompatibleProvider

from .llamacpp import MODEL, LlamaServer

pytestmark = pytest.mark.usefixtures("llama_installed")

GREEDY = {"temperature": 0, "seed": 1, "max_tokens": 60}
GET_ROWS = {"type": "function", "function": {
    "name": "get_rows", "description": "The first rows of the table",
    "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}}
TOOLS = [GET_ROWS]


def call_message(n: int, call_id: str) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": [{
        "id": call_id, "type": "function",
        "function": {"name": "get_rows", "arguments": json.dumps({"n": n})}}]}


EXAMPLES = [{"role": "user", "content": "Call get_rows with n=5."}, call_message(5, "call_1"),
            {"role": "user", "content": "Call get_rows with n=7."}, call_message(7, "call_2")]
ASK = EXAMPLES + [{"role": "user", "content": "Call get_rows with n=3."}]
ROWS = "id,name\n1,Ada\n2,Bob\n3,Cy"
#: A call to get_rows(n=3) and its result (for histories sent without ``tools``).
ANSWERED = [call_message(3, "call_3"), {"role": "tool", "tool_call_id": "call_3", "content": ROWS}]


def raw(server: LlamaServer, messages: list[dict[str, Any]], **params: Any) -> dict[str, Any]:
    """A non-streamed chat completion's first choice, by plain httpx."""
    r = server.client.post("/v1/chat/completions", json=server.chat_body(messages, **GREEDY, **params))
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]


def raw_stream(server: LlamaServer, messages: list[dict[str, Any]], **params: Any) -> list[dict]:
    """The ``choices[0]`` of every streamed event, by plain httpx."""
    body = server.chat_body(messages, stream=True, **GREEDY, **params)
    out = []
    with server.client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {"):
                out.extend(json.loads(line[6:])["choices"][:1])
    return out


@pytest.fixture
async def provider(llama_tools: LlamaServer):
    async with OpenAICompatibleProvider(base_url=llama_tools.v1, timeout=60, chunk_timeout=30) as p:
        yield p


@pytest.mark.parametrize("tool_choice", [None, "auto", "required"])
def test_non_streamed_reply_is_a_get_rows_call(llama_tools, tool_choice):
    choice = raw(llama_tools, ASK, tools=TOOLS, **({"tool_choice": tool_choice} if tool_choice else {}))
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert not message.get("content")  # "" from llama.cpp
    [call] = message["tool_calls"]
    assert call["type"] == "function" and isinstance(call["id"], str) and call["id"]
    assert call["function"]["name"] == "get_rows"
    assert json.loads(call["function"]["arguments"]) == {"n": 3}


def test_streamed_call_arrives_as_argument_fragments(llama_tools):
    choices = raw_stream(llama_tools, ASK, tools=TOOLS)
    fragments = [c["delta"]["tool_calls"] for c in choices if c["delta"].get("tool_calls")]
    assert all(len(f) == 1 and f[0]["index"] == 0 for f in fragments)
    first = fragments[0][0]
    assert first["id"] and first["type"] == "function" and first["function"]["name"] == "get_rows"
    assert all("name" not in f[0]["function"] and "id" not in f[0] for f in fragments[1:])
    arguments = "".join(f[0]["function"]["arguments"] for f in fragments)
    assert len(fragments) > 1 and json.loads(arguments) == {"n": 3}
    assert not any(c["delta"].get("content") for c in choices)
    assert choices[-1]["finish_reason"] == "tool_calls"
    [whole] = raw(llama_tools, ASK, tools=TOOLS)["message"]["tool_calls"]
    assert arguments == whole["function"]["arguments"]


async def test_provider_stream_gives_the_raw_call(llama_tools, provider):
    expected = raw(llama_tools, ASK, tools=TOOLS)["message"]["tool_calls"][0]["function"]
    # the examples' calls as neutral dicts (arguments an object): the payload turns them back
    # into OpenAI calls with JSON text, so the prompt is the raw request's
    neutral = [{**m, "tool_calls": [{"id": c["id"], "name": c["function"]["name"],
                                     "arguments": json.loads(c["function"]["arguments"])}
                                    for c in m["tool_calls"]]} if m.get("tool_calls") else m
               for m in ASK]
    stream = await provider.stream_chat(ChatRequest(model=MODEL, messages=neutral, tools=TOOLS, **GREEDY))
    chunks = [chunk async for chunk in stream]
    [call] = stream.tool_calls
    assert isinstance(call, ToolCall) and call.arguments_error is None and call.id
    assert (call.name, call.arguments) == (expected["name"], json.loads(expected["arguments"]))
    assert chunks[-1].done and chunks[-1].tool_calls == [call]
    assert stream.text == "" and stream.usage.finish_reason == "tool_calls"


async def test_tool_result_follow_up(llama_tools, provider):
    """The 135M model answers a tool result by echoing it in the template's tags."""
    call = raw(llama_tools, ASK, tools=TOOLS)["message"]["tool_calls"][0]
    history = ASK + [{"role": "assistant", "content": None, "tool_calls": [call]},
                     {"role": "tool", "tool_call_id": call["id"], "content": ROWS}]
    choice = raw(llama_tools, history, tools=TOOLS)
    assert choice["finish_reason"] == "stop" and not choice["message"].get("tool_calls")
    assert choice["message"]["content"] == f"<tool_response>\n{ROWS}\n</tool_response>"
    stream = await provider.stream_chat(ChatRequest(model=MODEL, messages=history, tools=TOOLS, **GREEDY))
    await stream.collect()
    assert stream.text == choice["message"]["content"] and not stream.tool_calls


def test_models_own_template_ignores_tools_but_takes_tool_history(llama_installed):
    """SmolLM2's own template: ``tools`` are dropped (no call, even with
    ``tool_choice: "required"``); a history with calls and results is accepted. The template
    renders each call as an empty assistant turn, so after ``EXAMPLES`` the model copies one
    (an empty reply), and the result as a ``tool`` turn.

    A server of its own, not the session's ``llama``: a slot's cached prompt changes how the
    next prompt is evaluated (batches), which can change greedy text, and tests there compare
    replies across slots."""
    with LlamaServer(slots=1, embedding=False) as llama:
        for choice in ({}, {"tool_choice": "required"}):
            answer = raw(llama, ASK, tools=TOOLS, **choice)
            assert (answer["finish_reason"], answer["message"]["content"]) == ("stop", "")
            assert not answer["message"].get("tool_calls")
            answer = raw(llama, ASK[-1:], tools=TOOLS, **choice)
            assert answer["message"]["content"] and not answer["message"].get("tool_calls")
        history = ASK + ANSWERED
        assert raw(llama, history)["message"]["content"]


def test_without_jinja_tools_are_an_error(llama_installed):
    with LlamaServer(slots=1, embedding=False, jinja=False) as server:
        ask = server.chat_body(ASK, tools=TOOLS, **GREEDY)
        r = server.client.post("/v1/chat/completions", json=ask)
        assert r.status_code == 500
        assert r.json()["error"]["message"] == "tools param requires --jinja flag"
        history = ASK + ANSWERED
        assert raw(server, history)["message"]["content"]  # a history with calls needs no jinja


def get_rows(n: int) -> str:
    """The first rows of the table"""
    return "\n".join(ROWS.splitlines()[: n + 1])


def test_the_kits_tool_loop_matches_a_raw_two_request_conversation(llama_tools):
    """chat(tools=[get_rows]) on the real server: the model calls get_rows(n=3), the kit runs
    it and sends the result, and the final text equals that of the same conversation made by
    hand (greedy decoding)."""
    import gleitzeit_nb
    from gleitzeit_nb.app.connections import CONNECTIONS
    from gleitzeit_nb.app.sessions import ChatSession
    from gleitzeit_nb.core.tools import tool_from_function

    assert tool_from_function(get_rows).to_schema() == GET_ROWS  # the same prompt as by hand
    first = raw(llama_tools, ASK, tools=TOOLS)
    [call] = first["message"]["tool_calls"]
    by_hand = ASK + [{"role": "assistant", "content": first["message"].get("content") or "",
                      "tool_calls": [call]},
                     {"role": "tool", "tool_call_id": call["id"], "content": get_rows(3)}]
    expected = raw(llama_tools, by_hand, tools=TOOLS)
    assert expected["finish_reason"] == "stop"

    CONNECTIONS.sessions.put(ChatSession("llama-tools", [dict(m) for m in EXAMPLES]))
    reply = gleitzeit_nb.chat("Call get_rows with n=3.", tools=[get_rows], session="llama-tools",
                              host=llama_tools.v1, model=MODEL, temperature=0, seed=1,
                              max_tokens=60)
    [run] = reply.tool_calls
    assert (run.name, run.arguments, run.status, run.id) == ("get_rows", {"n": 3}, "ok", "call_1_1")
    assert run.result == "id,name\n1,Ada\n2,Bob\n3,Cy"
    assert str(reply) == expected["message"]["content"]
    assert reply.stats["rounds"] == 2
