"""Scripted tool calls in the simulator over real loopback HTTP: Ollama's NDJSON
``message.tool_calls`` and OpenAI's SSE ``tool_calls`` deltas (arguments split across
chunks), streamed and whole, parallel calls, the follow-up turn with the results, the
``[[call:...]]`` directive and the 400 for a model without the tools capability."""

from __future__ import annotations

import json
from typing import Any

import httpx
import ollama
import openai
import pytest

from gleitzeit_nb.testing import OllamaSimulator

from .test_simulator_openai import parse_sse

ROWS_TOOL = {"type": "function", "function": {
    "name": "get_rows", "description": "First n rows of the table.",
    "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}}
PLOT_TOOL = {"type": "function", "function": {
    "name": "plot", "parameters": {"type": "object", "properties": {"column": {"type": "string"}}}}}
TOOLS = [ROWS_TOOL, PLOT_TOOL]
ROWS_RESULT = "city,temp\nParis,21\nOslo,12\nLima,19\n" + "padding " * 20
ASK = [{"role": "user", "content": "Show me the first rows."}]


def get_rows(n: int) -> str:
    """First n rows of the table.

    Args:
        n: how many rows
    """
    return "\n".join(ROWS_RESULT.splitlines()[: n + 1])


@pytest.fixture
def api(sim: OllamaSimulator):
    with httpx.Client(base_url=sim.url, timeout=5) as client:
        yield client


def ndjson(api: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    with api.stream("POST", "/api/chat", json={**body, "stream": True}) as resp:
        assert resp.status_code == 200, resp.read()
        return [json.loads(line) for line in resp.iter_lines() if line]


def sse(api: httpx.Client, body: dict[str, Any]) -> list[Any]:
    with api.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as resp:
        assert resp.status_code == 200, resp.read()
        return parse_sse(resp.read().decode())


def tool_deltas(events: list[Any]) -> list[dict[str, Any]]:
    """Every ``delta.tool_calls`` item, in order."""
    return [item for e in events if isinstance(e, dict) and e.get("choices")
            for item in e["choices"][0]["delta"].get("tool_calls") or []]


def reassemble(items: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """OpenAI deltas folded per index: id, name and the concatenated arguments."""
    calls: dict[int, dict[str, Any]] = {}
    for item in items:
        slot = calls.setdefault(item["index"], {"id": None, "name": None, "arguments": ""})
        slot["id"] = item.get("id") or slot["id"]
        slot["name"] = item.get("function", {}).get("name") or slot["name"]
        slot["arguments"] += item.get("function", {}).get("arguments") or ""
    return calls


# -- Ollama /api/chat ---------------------------------------------------------

def test_ollama_stream_sends_the_calls_in_one_chunk_then_done(sim, api):
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 3}}])
    lines = ndjson(api, {"model": "llama3.2", "messages": ASK, "tools": TOOLS})
    with_calls = [line for line in lines if line["message"].get("tool_calls")]
    assert len(with_calls) == 1 and with_calls[0]["done"] is False
    assert with_calls[0]["message"] == {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_rows", "arguments": {"n": 3}}}]}
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "stop"
    assert "tool_calls" not in lines[-1]["message"] and lines.index(with_calls[0]) == len(lines) - 2


def test_ollama_whole_reply_with_parallel_calls_and_text(sim, api):
    calls = [{"name": "get_rows", "arguments": {"n": 2}}, {"name": "plot", "arguments": {"column": "temp"}}]
    sim.script_tools(calls, text="Let me look.")
    body = api.post("/api/chat", json={"model": "qwen3", "messages": ASK, "tools": TOOLS,
                                       "stream": False}).json()
    assert body["message"]["content"] == "Let me look." and body["done_reason"] == "stop"
    assert body["message"]["tool_calls"] == [{"function": c} for c in calls]


def test_ollama_client_two_rounds_quote_the_result_and_bodies_are_recorded(sim):
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 3}}])
    client = ollama.Client(host=sim.url)
    messages: list[Any] = list(ASK)
    first = client.chat(model="llama3.2", messages=messages, tools=[get_rows])
    (call,) = first.message.tool_calls
    assert call.function.name == "get_rows" and call.function.arguments == {"n": 3}
    result = get_rows(**call.function.arguments)
    messages += [first.message, {"role": "tool", "tool_name": "get_rows", "content": result}]
    final = client.chat(model="llama3.2", messages=messages, tools=[get_rows])
    assert final.message.content == f"Based on get_rows: {result[:60]}"
    assert not final.message.tool_calls and "Oslo" in final.message.content
    bodies = [r.body for r in sim.requests if r.path == "/api/chat"]
    assert len(bodies) == 2
    schema = bodies[0]["tools"][0]["function"]
    assert schema["name"] == "get_rows" and schema["parameters"]["properties"]["n"]["type"] == "integer"
    assert bodies[1]["messages"][1]["tool_calls"][0]["function"]["name"] == "get_rows"
    assert bodies[1]["messages"][2] == {"role": "tool", "tool_name": "get_rows", "content": result}


def test_call_directive_calls_only_when_tools_are_offered(sim, api):
    prompt = 'Rows please [[call:get_rows {"n": 2}]] and [[call:plot]]'
    ask = [{"role": "user", "content": prompt}]
    body = api.post("/api/chat", json={"model": "llama3.2", "messages": ask, "tools": TOOLS,
                                       "stream": False}).json()
    assert body["message"]["tool_calls"] == [
        {"function": {"name": "get_rows", "arguments": {"n": 2}}},
        {"function": {"name": "plot", "arguments": {}}}]
    plain = api.post("/api/chat", json={"model": "llama3.2", "messages": ask, "stream": False}).json()
    assert "tool_calls" not in plain["message"] and plain["message"]["content"].startswith("You said:")
    bad = [{"role": "user", "content": "[[call:get_rows {n: 2}]]"}]
    resp = api.post("/api/chat", json={"model": "llama3.2", "messages": bad, "tools": TOOLS})
    assert resp.status_code == 400 and "invalid JSON" in resp.json()["error"]


def test_rules_per_model_rounds_and_then(sim, api):
    sim.script_tools([{"name": "plot", "arguments": {"column": "x"}},
                      {"name": "get_rows", "arguments": {"n": 1}}],
                     model="qwen3", rounds=2, then="Done. {results}")
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 9}}], model="gemma3")
    unscripted = api.post("/api/chat", json={"model": "llama3.2", "messages": ASK, "tools": TOOLS,
                                             "stream": False}).json()["message"]
    assert "tool_calls" not in unscripted and unscripted["content"].startswith("You said:")
    messages: list[Any] = list(ASK)
    for n in range(2):
        reply = api.post("/api/chat", json={"model": "qwen3", "messages": messages, "tools": TOOLS,
                                            "stream": False}).json()["message"]
        assert [c["function"]["name"] for c in reply["tool_calls"]] == ["plot", "get_rows"], n
        messages += [reply, {"role": "tool", "tool_name": "plot", "content": f"plotted {n}"},
                     {"role": "tool", "tool_name": "get_rows", "content": f"row {n}"}]
    final = api.post("/api/chat", json={"model": "qwen3", "messages": messages, "tools": TOOLS,
                                        "stream": False}).json()["message"]
    assert final == {"role": "assistant",
                     "content": "Done. Based on plot: plotted 1\nBased on get_rows: row 1"}
    refused = api.post("/api/chat", json={"model": "gemma3", "messages": ASK, "tools": TOOLS})
    assert refused.status_code == 400, "a rule does not give a model the tools capability"
    sim.reset()
    again = api.post("/api/chat", json={"model": "qwen3", "messages": ASK, "tools": TOOLS,
                                        "stream": False}).json()["message"]
    assert "tool_calls" not in again


def test_parallel_results_are_all_quoted(sim, api):
    messages = ASK + [
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_rows", "arguments": {"n": 1}}},
            {"function": {"name": "plot", "arguments": {"column": "temp"}}}]},
        {"role": "tool", "tool_name": "get_rows", "content": "city,temp\nParis,21"},
        {"role": "tool", "tool_name": "plot", "content": "<img src=x onerror=alert(1)>"}]
    text = api.post("/api/chat", json={"model": "llama3.2", "messages": messages, "tools": TOOLS,
                                       "stream": False}).json()["message"]["content"]
    assert text == ("Based on get_rows: city,temp\nParis,21\n"
                    "Based on plot: <img src=x onerror=alert(1)>")


def test_model_without_tools_gets_ollamas_400_on_both_apis(sim, api):
    expected = "registry.ollama.ai/library/llava:latest does not support tools"
    resp = api.post("/api/chat", json={"model": "llava", "messages": ASK, "tools": TOOLS})
    assert resp.status_code == 400 and resp.json() == {"error": expected}
    with pytest.raises(ollama.ResponseError) as err:
        ollama.Client(host=sim.url).chat(model="llava", messages=ASK, tools=[get_rows])
    assert err.value.status_code == 400 and expected in str(err.value)
    resp = api.post("/v1/chat/completions", json={"model": "llava", "messages": ASK, "tools": TOOLS})
    assert resp.status_code == 400
    assert resp.json()["error"]["message"] == expected
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert api.post("/api/chat", json={"model": "llava", "messages": ASK,
                                       "stream": False}).status_code == 200


# -- OpenAI /v1/chat/completions -----------------------------------------------

def test_openai_stream_splits_arguments_across_chunks(sim, api):
    args = {"n": 3, "columns": ["city", "temp"], "where": "temp > 10"}
    sim.script_tools([{"name": "get_rows", "arguments": args}])
    events = sse(api, {"model": "llama3.2", "messages": ASK, "tools": TOOLS,
                       "stream_options": {"include_usage": True}})
    items = tool_deltas(events)
    assert len(items) >= 2
    first, *rest = items
    assert first["index"] == 0 and first["type"] == "function" and first["id"].startswith("call_")
    assert first["function"]["name"] == "get_rows"
    assert all(set(i) == {"index", "function"} and set(i["function"]) == {"arguments"} for i in rest)
    pieces = [i["function"]["arguments"] for i in items]
    assert all(pieces) and not any(_valid_json(p) for p in pieces)
    assert json.loads("".join(pieces)) == args
    finish = [e["choices"][0]["finish_reason"] for e in events if isinstance(e, dict) and e["choices"]]
    assert finish[-1] == "tool_calls" and set(finish[:-1]) == {None}
    assert events[-2]["usage"]["total_tokens"] > 0 and events[-1] == "[DONE]"


def _valid_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def test_openai_stream_parallel_calls_reassemble_by_index(sim, api):
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 2}},
                      {"name": "plot", "arguments": {"column": "temp"}}])
    events = sse(api, {"model": "qwen3", "messages": ASK, "tools": TOOLS})
    items = tool_deltas(events)
    assert [i["index"] for i in items] == sorted(i["index"] for i in items)
    calls = reassemble(items)
    assert sorted(calls) == [0, 1] and calls[0]["id"] != calls[1]["id"]
    assert (calls[0]["name"], json.loads(calls[0]["arguments"])) == ("get_rows", {"n": 2})
    assert (calls[1]["name"], json.loads(calls[1]["arguments"])) == ("plot", {"column": "temp"})
    assert sum(1 for i in items if i["index"] == 1) >= 2
    again = reassemble(tool_deltas(sse(api, {"model": "qwen3", "messages": ASK, "tools": TOOLS})))
    assert [again[i]["id"] for i in (0, 1)] == [calls[0]["id"], calls[1]["id"]]


def test_openai_whole_reply_and_directive(sim, api):
    ask = [{"role": "user", "content": 'Go [[call:get_rows {"n": 4}]]'}]
    body = api.post("/v1/chat/completions", json={"model": "llama3.2", "messages": ask,
                                                  "tools": TOOLS}).json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"]["name"] == "get_rows" and json.loads(call["function"]["arguments"]) == {"n": 4}


def test_openai_client_two_rounds_quote_the_result(sim):
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 3}},
                      {"name": "plot", "arguments": {"column": "temp"}}])
    client = openai.OpenAI(base_url=sim.url + "/v1", api_key="sk-none", max_retries=0, timeout=5)
    messages: list[Any] = list(ASK)
    stream = client.chat.completions.create(model="llama3.2", messages=messages, tools=TOOLS,
                                            stream=True)
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for d in choice.delta.tool_calls or []:
            slot = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
            slot["id"] += d.id or ""
            slot["name"] += (d.function.name or "") if d.function else ""
            slot["arguments"] += (d.function.arguments or "") if d.function else ""
    assert finish == "tool_calls" and [calls[i]["name"] for i in (0, 1)] == ["get_rows", "plot"]
    results = {"get_rows": get_rows(**json.loads(calls[0]["arguments"])), "plot": "chart.png"}
    messages.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": c["id"], "type": "function",
         "function": {"name": c["name"], "arguments": c["arguments"]}} for c in calls.values()]})
    messages += [{"role": "tool", "tool_call_id": c["id"], "content": results[c["name"]]}
                 for c in calls.values()]
    final = client.chat.completions.create(model="llama3.2", messages=messages, tools=TOOLS)
    assert final.choices[0].finish_reason == "stop" and not final.choices[0].message.tool_calls
    assert final.choices[0].message.content == (
        f"Based on get_rows: {results['get_rows'][:60]}\nBased on plot: chart.png")
    bodies = [r.body for r in sim.requests if r.path == "/v1/chat/completions"]
    assert [t["function"]["name"] for t in bodies[0]["tools"]] == ["get_rows", "plot"]
    tool_msgs = [m for m in bodies[1]["messages"] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == [calls[0]["id"], calls[1]["id"]]
    assert tool_msgs[0]["content"] == results["get_rows"]
    with pytest.raises(openai.BadRequestError, match="does not support tools"):
        client.chat.completions.create(model="llava", messages=ASK, tools=TOOLS)
