"""The simulator's OpenAI-compatible API (/v1, /health, /props) over real loopback HTTP
(the official ``openai`` client: test_simulator_openai_clients.py)."""

from __future__ import annotations

import base64
import json
import math
import struct
import threading
import time
from typing import Any

import httpx
import pytest

from gleitzeit_nb.testing import OllamaSimulator

from .sim_data import Person, image_b64

try:
    import jsonschema
except ImportError:  # pragma: no cover - optional cross-check
    jsonschema = None

CHAT = "/v1/chat/completions"
KEY = "sk-test-123"


def chat(content: str = "Hello there, simulator!", model: str = "llama3.2", **kw: Any) -> dict:
    """A /v1/chat/completions body with one user message."""
    return {"model": model, "messages": [{"role": "user", "content": content}], **kw}


def parse_sse(raw: str) -> list[Any]:
    """Every event of an SSE body: parsed JSON, or "[DONE]"; checks the framing."""
    blocks = raw.split("\n\n")
    assert blocks[-1] == "", "the stream must end with a complete event"
    out = []
    for block in blocks[:-1]:
        assert block.startswith("data: ") and "\n" not in block, block
        data = block[len("data: "):]
        out.append(data if data == "[DONE]" else json.loads(data))
    return out


def events(client: httpx.Client, body: dict[str, Any]) -> list[Any]:
    with client.stream("POST", CHAT, json={**body, "stream": True}) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"] == "text/event-stream"
        return parse_sse(resp.read().decode())


def deltas(evts: list[Any], key: str = "content") -> str:
    return "".join(e["choices"][0]["delta"].get(key) or "" for e in evts
                   if isinstance(e, dict) and e.get("choices"))


def complete(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    resp = client.post(CHAT, json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture(scope="module")
def shared():
    with OllamaSimulator() as sim, httpx.Client(base_url=sim.url, timeout=5) as client:
        yield sim, client


@pytest.fixture
def sim(shared) -> OllamaSimulator:
    sim = shared[0]
    sim.reset()
    sim.token_delay, sim.parallel, sim.load_delay, sim.api_key = 0.0, None, 0.0, None
    return sim


@pytest.fixture
def api(sim, shared) -> httpx.Client:
    return shared[1]


def test_models_list(sim, api):
    listing = api.get("/v1/models").json()
    assert listing["object"] == "list"
    assert [m["id"] for m in listing["data"]] == sim.catalog.names()
    for entry in listing["data"]:
        assert entry["object"] == "model" and entry["owned_by"] == "simulator"
        assert isinstance(entry["created"], int) and entry["created"] > 1_700_000_000


def test_stream_joins_to_non_streamed_reply(api):
    body = chat(seed=7)
    evts = events(api, {**body, "stream_options": {"include_usage": True}})
    opening, *chunks, finish, usage, done = evts
    assert opening["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert done == "[DONE]"
    assert len(chunks) == 40 and all(c["choices"][0]["finish_reason"] is None for c in chunks)
    assert finish["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 40
    ids = {e["id"] for e in evts[:-1]}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-")
    assert {e["object"] for e in evts[:-1]} == {"chat.completion.chunk"}
    assert {e["model"] for e in evts[:-1]} == {"llama3.2"}
    text = deltas(evts)
    assert text.startswith('You said: "Hello there, simulator!".')
    whole = complete(api, body)
    assert whole["object"] == "chat.completion" and whole["model"] == "llama3.2"
    choice = whole["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": text}
    assert choice["finish_reason"] == "stop" and whole["usage"] == usage["usage"]
    u = whole["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] and u["prompt_tokens"] > 0
    plain = events(api, body)  # no include_usage: no usage chunk
    assert plain[-1] == "[DONE]" and plain[-2]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in e for e in plain[:-1]) and deltas(plain) == text
    assert complete(api, chat(seed=8))["choices"][0]["message"]["content"] != text


def test_max_tokens_and_stop(api):
    short = complete(api, chat(max_tokens=5))
    assert short["choices"][0]["finish_reason"] == "length"
    assert short["usage"]["completion_tokens"] == 5
    assert len(short["choices"][0]["message"]["content"].split()) == 5
    newer = complete(api, chat(max_tokens=10, max_completion_tokens=3))
    assert newer["usage"]["completion_tokens"] == 3
    evts = events(api, chat(max_tokens=4))
    assert evts[-2]["choices"][0]["finish_reason"] == "length" and len(evts) == 1 + 4 + 2
    stopped = complete(api, chat(stop=["said"]))["choices"][0]
    assert stopped["message"]["content"] == "You " and stopped["finish_reason"] == "stop"
    assert complete(api, chat(stop="said"))["choices"][0]["message"]["content"] == "You "


def test_reasoning_content_for_thinking_models(api):
    evts = events(api, chat(model="qwen3"))
    kinds = [next(iter(e["choices"][0]["delta"])) for e in evts[1:-2]]
    assert kinds[0] == "reasoning_content" and kinds[-1] == "content"
    assert kinds == sorted(kinds, reverse=True)  # all reasoning before any content
    whole = complete(api, chat(model="qwen3"))
    message = whole["choices"][0]["message"]
    assert message["reasoning_content"] == deltas(evts, "reasoning_content")
    assert message["content"] == deltas(evts)
    assert whole["usage"]["completion_tokens_details"]["reasoning_tokens"] == kinds.count(
        "reasoning_content")
    for off in ({"reasoning_effort": "none"},
                {"chat_template_kwargs": {"enable_thinking": False}}):
        message = complete(api, chat(model="qwen3", **off))["choices"][0]["message"]
        assert "reasoning_content" not in message and message["content"]
    assert "reasoning_content" in complete(api, chat(model="qwen3", reasoning_effort="low"))[
        "choices"][0]["message"]
    assert "reasoning_content" not in complete(api, chat())["choices"][0]["message"]


def test_response_format(api):
    schema = Person.model_json_schema()
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema}}
    for seed in range(4):
        body = chat(response_format=fmt, seed=seed)
        value = json.loads(complete(api, body)["choices"][0]["message"]["content"])
        Person.model_validate(value, strict=True)
        if jsonschema is not None:
            jsonschema.validate(value, schema)
        assert json.loads(deltas(events(api, body))) == value
    obj = json.loads(complete(api, chat(response_format={"type": "json_object"}))
                     ["choices"][0]["message"]["content"])
    assert isinstance(obj, dict) and obj
    text = complete(api, chat(response_format={"type": "text"}))["choices"][0]["message"]["content"]
    assert text.startswith("You said:")
    bad = api.post(CHAT, json=chat(response_format={"type": "yaml"}))
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_embeddings(api):
    def embed(**kw: Any) -> httpx.Response:
        return api.post("/v1/embeddings", json={"model": "nomic-embed-text", **kw})

    one = embed(input="hello world").json()
    assert one["object"] == "list" and one["model"] == "nomic-embed-text"
    assert [(d["object"], d["index"]) for d in one["data"]] == [("embedding", 0)]
    vec = one["data"][0]["embedding"]
    assert len(vec) == 768 and math.isclose(sum(x * x for x in vec), 1.0, abs_tol=1e-5)
    assert vec == api.post("/api/embed", json={"model": "nomic-embed-text",
                                               "input": "hello world"}).json()["embeddings"][0]
    texts = ["quantum tax law", "hello world", "hello there world"]
    many = embed(input=texts).json()
    assert [d["index"] for d in many["data"]] == [0, 1, 2]
    assert many["data"][1]["embedding"] == vec
    assert many["data"][0]["embedding"] == embed(input=texts[0]).json()["data"][0]["embedding"]
    assert many["usage"] == {"prompt_tokens": 8, "total_tokens": 8}
    assert len(embed(input="x", dimensions=64).json()["data"][0]["embedding"]) == 64
    packed = embed(input="hello world", encoding_format="base64").json()["data"][0]["embedding"]
    raw = base64.b64decode(packed)
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == pytest.approx(vec, abs=1e-6)
    refused = api.post("/v1/embeddings", json={"model": "llama3.2", "input": "x"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == "The model `llama3.2` does not support embeddings."
    assert embed(input=[1, 2]).status_code == 400
    assert api.post("/v1/embeddings", json={"model": "ghost", "input": "x"}).status_code == 404


def test_image_parts(api):
    def ask(model: str, url: str) -> httpx.Response:
        parts = [{"type": "text", "text": "What is"}, {"type": "text", "text": "this?"},
                 {"type": "image_url", "image_url": {"url": url}}]
        return api.post(CHAT, json={"model": model, "messages": [{"role": "user", "content": parts}]})

    png = "data:image/png;base64," + image_b64((640, 480))
    reply = ask("llava", png).json()["choices"][0]["message"]["content"]
    assert reply.startswith('I see a PNG image of 640x480 pixels (RGB). You said: "What is this?".')
    blind = ask("llama3.2", png)
    assert blind.status_code == 400
    assert blind.json()["error"]["message"] == "The model `llama3.2` does not support image input."
    remote = ask("llava", "https://example.com/cat.png")
    assert remote.status_code == 400 and "data:image" in remote.json()["error"]["message"]
    junk = ask("llava", "data:image/png;base64,not*base64")
    assert junk.status_code == 400 and "illegal base64" in junk.json()["error"]["message"]
    odd = api.post(CHAT, json={"model": "llava", "messages": [
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]})
    assert odd.status_code == 400


def test_errors_have_openai_shape(api):
    ghost = api.post(CHAT, json=chat(model="ghost"))
    assert (ghost.status_code, ghost.json()) == (404, {"error": {
        "message": "The model `ghost` does not exist.", "type": "invalid_request_error",
        "code": "model_not_found"}})
    for body in ({"messages": [{"role": "user", "content": "x"}]}, chat(n=2),
                 {"model": "llama3.2", "messages": []}, chat(max_tokens=0),
                 chat(model="nomic-embed-text")):
        resp = api.post(CHAT, json=body)
        assert resp.status_code == 400, body
        assert set(resp.json()["error"]) == {"message", "type", "code"}
        assert resp.json()["error"]["type"] == "invalid_request_error"
    bad = api.post(CHAT, content=b"{nope")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == 400
    missing = api.get("/v1/nope")
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "Invalid URL (GET /v1/nope)"
    assert api.get("/api/nope").json() == {"error": "404 page not found: GET /api/nope"}


def test_api_key(sim, api):
    sim.api_key = KEY
    good, wrong = {"Authorization": f"Bearer {KEY}"}, {"Authorization": "Bearer sk-other"}
    invalid = {"error": {"message": "Invalid API key", "type": "authentication_error",
                         "code": "invalid_api_key"}}
    for headers in ({}, wrong, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}):
        for method, path, body in (("GET", "/v1/models", None), ("POST", CHAT, chat()),
                                   ("POST", "/v1/embeddings", {"model": "nomic-embed-text", "input": "x"}),
                                   ("GET", "/props", None)):
            resp = api.request(method, path, json=body, headers=headers)
            assert (resp.status_code, resp.json()) == (401, invalid), (headers, path)
    assert api.get("/v1/models", headers=good).status_code == 200
    assert api.post(CHAT, json=chat(), headers=good).status_code == 200
    assert api.get("/health").json() == {"status": "ok"}
    native = api.post("/api/chat", json={**chat(), "stream": False})  # Ollama's API needs no key
    assert native.status_code == 200 and native.json()["done"] is True
    sim.inject("http_error", status=503, message="busy")
    assert api.post(CHAT, json=chat()).status_code == 401  # refused: the fault stays pending
    assert api.post(CHAT, json=chat(), headers=good).status_code == 503
    sent = [(r.path, r.bearer) for r in sim.requests]
    assert len(sent) == 4 * 4 + 6 and sent[-6:] == [
        ("/v1/models", KEY), (CHAT, KEY), ("/health", None), ("/api/chat", None),
        (CHAT, None), (CHAT, KEY)]
    assert sim.requests[0].authorization is None and sim.requests[4].bearer == "sk-other"
    assert sim.requests[8].authorization == KEY and sim.requests[8].bearer is None
    assert sim.requests[12].authorization == f"Basic {KEY}" and sim.requests[12].bearer is None
    sim.api_key = None
    assert api.get("/v1/models").status_code == 200


def test_http_error_fault(sim, api):
    sim.inject("http_error", status=503, message="busy", count=2)
    sim.inject("http_error", status=429, message="slow down", path="/v1/models")
    for stream in (True, False):
        resp = api.post(CHAT, json=chat(stream=stream))
        assert (resp.status_code, resp.json()) == (503, {"error": {
            "message": "busy", "type": "server_error", "code": 503}})
    assert api.post(CHAT, json=chat()).status_code == 200
    limited = api.get("/v1/models")
    assert limited.status_code == 429 and limited.json()["error"]["type"] == "rate_limit_error"
    assert api.get("/v1/models").status_code == 200


def test_stall_and_slow_faults_over_sse(sim, api):
    sim.inject("stall_before", seconds=0.12)
    t0 = time.perf_counter()
    assert events(api, chat())[-1] == "[DONE]"
    assert time.perf_counter() - t0 >= 0.12
    sim.inject("stall_after", after=2, seconds=0.15)
    stamps = []
    with api.stream("POST", CHAT, json=chat(stream=True)) as resp:
        stamps.extend(time.perf_counter() for line in resp.iter_lines() if line)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    # opening, 2 deltas, stall, 38 deltas, finish, [DONE]
    assert len(stamps) == 1 + 40 + 2 and gaps[2] >= 0.14
    assert max(gaps[:2] + gaps[3:]) < gaps[2] / 2
    sim.inject("slow", token_delay=0.01)
    t0 = time.perf_counter()
    assert len(events(api, chat("[[tokens=11]]"))) == 1 + 11 + 2
    assert 0.1 <= time.perf_counter() - t0 < 0.5


def test_terminal_faults_over_sse(sim, api):
    sim.inject("mid_stream_error", after=3, message="out of memory")
    evts = events(api, chat())
    assert len(evts) == 1 + 3 + 1 and deltas(evts[:4])
    assert evts[-1] == {"error": {"message": "out of memory", "type": "server_error", "code": 500}}
    sim.inject("malformed_line", after=2)
    with api.stream("POST", CHAT, json=chat(stream=True)) as resp:
        blocks = resp.read().decode().split("\n\n")
    assert len(blocks) == 1 + 2 + 1 + 1 and blocks[-1] == ""
    assert all(json.loads(b[6:])["object"] == "chat.completion.chunk" for b in blocks[:3])
    assert blocks[3].startswith("data: {")
    with pytest.raises(json.JSONDecodeError):
        json.loads(blocks[3][6:])
    sim.inject("drop", after=4)
    got: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with api.stream("POST", CHAT, json=chat(stream=True)) as resp:
            got.extend(line for line in resp.iter_lines() if line)
    assert len(got) == 1 + 4 and "[DONE]" not in got[-1]
    assert sim.disconnects == []  # a server-side drop is not a client disconnect
    assert events(api, chat())[-1] == "[DONE]"  # faults used up


def test_terminal_faults_without_streaming(sim, api):
    sim.inject("mid_stream_error", message="boom")
    resp = api.post(CHAT, json=chat())
    assert (resp.status_code, resp.json()["error"]["message"]) == (500, "boom")
    sim.inject("malformed_line")
    resp = api.post(CHAT, json=chat())
    assert resp.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        resp.json()
    sim.inject("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        api.post(CHAT, json=chat())


@pytest.mark.parametrize("fault", [None, "stall_before"])
def test_client_disconnect_is_recorded(sim, fault):
    sim.token_delay = 0.05
    if fault:
        sim.inject("stall_before", seconds=10)
    with httpx.Client(base_url=sim.url, timeout=0.15) as client:
        try:
            with client.stream("POST", CHAT, json=chat("[[tokens=200]]", stream=True)) as resp:
                for i, _ in enumerate(line for line in resp.iter_lines() if line):
                    if i + 1 == 3:  # the opening and two deltas
                        break
        except httpx.ReadTimeout:
            assert fault == "stall_before"
        closed = time.monotonic()
    assert sim.wait_for_disconnects(1, timeout=1.0)
    gone = sim.disconnects[0]
    assert gone.path == CHAT and gone.time - closed < 1.0
    assert gone.chunks_sent == (0 if fault else 3)
    assert sim.active == 0


def test_parallel_slots_and_props(sim, api):
    assert "total_slots" not in api.get("/props").json()
    sim.parallel, sim.token_delay = 2, 0.03
    assert api.get("/props").json()["total_slots"] == 2
    results: list[int] = []
    one = lambda: results.append(api.post(CHAT, json=chat("[[tokens=6]]")).status_code)  # noqa: E731
    t0 = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    elapsed, one_round = time.perf_counter() - t0, 5 * 0.03
    assert results == [200] * 4 and sim.max_active == 2 and sim.active == 0
    assert 2 * one_round <= elapsed < 2 * one_round + 0.25  # two rounds; serial would be 0.6 s
