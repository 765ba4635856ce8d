"""Tests of gleitzeit_nb.testing.OllamaSimulator over real loopback HTTP."""

from __future__ import annotations

import base64
import http.client
import json
import math
import threading
import time
from typing import Any

import httpx
import ollama
import pytest

from gleitzeit_nb.testing import ModelSpec, OllamaSimulator

from .sim_data import HELLO, Person, image_b64

try:
    import jsonschema
except ImportError:  # pragma: no cover - optional cross-check
    jsonschema = None


def chat(content: str = "Hello there, simulator!", model: str = "llama3.2", **kw: Any) -> dict:
    """A /api/chat body with one user message."""
    return {"model": model, "messages": [{"role": "user", "content": content}], **kw}


def lines_of(client: httpx.Client, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with client.stream("POST", path, json=body) as resp:
        assert resp.status_code == 200, resp.read()
        assert resp.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line) for line in resp.iter_lines() if line]


def joined(chunks: list[dict], key: str = "content") -> str:
    return "".join(c["message"].get(key, "") for c in chunks)


@pytest.fixture(scope="module")
def shared():
    with OllamaSimulator() as sim, httpx.Client(base_url=sim.url, timeout=5) as client:
        yield sim, client


@pytest.fixture
def sim(shared) -> OllamaSimulator:
    sim = shared[0]
    sim.reset()
    sim.token_delay, sim.parallel, sim.load_delay = 0.0, None, 0.0
    return sim


@pytest.fixture
def api(sim, shared) -> httpx.Client:
    return shared[1]


def test_metadata_endpoints(api):
    assert api.get("/").text == "Ollama is running"
    assert api.get("/api/version").json()["version"].count(".") == 2
    models = api.get("/api/tags").json()["models"]
    assert {m["name"] for m in models} == {"llama3.2:latest", "qwen3:latest", "llava:latest",
                                           "gemma3:latest", "nomic-embed-text:latest"}
    assert set(models[0]["details"]) >= {"family", "parameter_size", "quantization_level"}
    show = api.post("/api/show", json={"model": "qwen3"}).json()
    assert "thinking" in show["capabilities"] and show["model_info"]["qwen3.context_length"] > 0
    assert api.post("/api/show", json={"name": "llava:latest"}).json()["details"]["family"] == "llama"
    missing = api.post("/api/show", json={"model": "nope"})
    assert (missing.status_code, missing.json()) == (404, {"error": "model 'nope' not found"})
    assert api.get("/api/ps").json() == {"models": []}
    api.post("/api/chat", json=chat(stream=False))
    ps = api.get("/api/ps").json()["models"]
    assert [m["name"] for m in ps] == ["llama3.2:latest"] and ps[0]["size_vram"] > 0
    api.post("/api/generate", json={"model": "llama3.2", "keep_alive": 0})  # unload
    assert api.get("/api/ps").json() == {"models": []}


def test_errors_and_unknown_routes(api):
    assert api.get("/api/nope").status_code == 404
    bad = api.post("/api/chat", content=b"{nope")
    assert bad.status_code == 400 and "invalid character" in bad.json()["error"]
    assert api.post("/api/chat", json={"messages": HELLO}).json() == {"error": "model is required"}
    r = api.post("/api/chat", json=chat(model="ghost"))
    assert (r.status_code, r.json()) == (404, {"error": 'model "ghost" not found, try pulling it first'})
    r = api.post("/api/chat", json=chat(model="nomic-embed-text"))
    assert r.status_code == 400 and "does not support chat" in r.json()["error"]


def test_chat_stream_joins_to_non_stream_reply(api):
    body = chat(options={"seed": 7})
    *deltas, final = lines_of(api, "/api/chat", body)
    assert all(c["done"] is False and c["message"]["role"] == "assistant" for c in deltas)
    text = joined(deltas)
    assert text.startswith('You said: "Hello there, simulator!".')
    assert final["done"] is True and final["done_reason"] == "stop" and final["message"]["content"] == ""
    assert final["eval_count"] == len(deltas) == 40 and final["eval_duration"] == 40 * 20_000_000
    assert all(isinstance(final[k], int) for k in ("total_duration", "load_duration", "prompt_eval_count"))
    whole = api.post("/api/chat", json={**body, "stream": False}).json()
    assert whole["message"]["content"] == text and whole["eval_count"] == 40
    other = api.post("/api/chat", json={**body, "stream": False, "options": {"seed": 8}}).json()
    assert other["message"]["content"] != text


def test_generate_tokens_directive_num_predict_and_stop(api):
    chunks = lines_of(api, "/api/generate", {"model": "llama3.2", "prompt": "Say hi",
                                             "system": "You are terse and kind"})
    assert chunks[0]["response"] and chunks[-1]["done"] and chunks[-1]["response"] == ""
    assert chunks[-1]["prompt_eval_count"] == (2 + 4) + (5 + 4)
    t0 = time.perf_counter()
    big = api.post("/api/chat", json=chat("Write a lot [[tokens=20000]]", stream=False)).json()
    assert big["eval_count"] == 20000 and len(big["message"]["content"].split()) == 20000
    assert time.perf_counter() - t0 < 1.5
    chunks = lines_of(api, "/api/generate", {"model": "llama3.2", "prompt": "[[tokens=7]]"})
    assert len(chunks) == 8 and chunks[-1]["eval_count"] == 7
    cut = lines_of(api, "/api/chat", chat(options={"num_predict": 5}))
    assert len(cut) == 6 and cut[-1]["done_reason"] == "length" and cut[-1]["eval_count"] == 5
    stop = api.post("/api/generate", json={"model": "llama3.2", "prompt": "x", "stream": False,
                                           "options": {"stop": ["said"]}}).json()
    assert stop["response"] == "You " and stop["done_reason"] == "stop"


def test_thinking(api):
    chunks = lines_of(api, "/api/chat", chat(model="qwen3", think=True))
    kinds = ["thinking" if c["message"].get("thinking") else "content" for c in chunks[:-1]]
    assert kinds[0] == "thinking" and kinds[-1] == "content"
    assert kinds == sorted(kinds, reverse=True)  # all thinking before any content
    gen = api.post("/api/generate", json={"model": "qwen3", "prompt": "hm", "think": "high",
                                          "stream": False}).json()
    assert gen["thinking"] and gen["response"]
    r = api.post("/api/chat", json=chat(think=True))
    assert (r.status_code, r.json()) == (400, {"error": '"llama3.2" does not support thinking'})


def test_structured_outputs(api):
    chunks = lines_of(api, "/api/chat", chat(format="json"))
    assert len(chunks) > 3 and isinstance(json.loads(joined(chunks)), dict)
    schema = Person.model_json_schema()
    assert "$defs" in schema
    for seed in range(5):
        value = json.loads(joined(lines_of(api, "/api/chat", chat(format=schema, options={"seed": seed}))))
        Person.model_validate(value, strict=True)  # structural check against the source model
        if jsonschema is not None:
            jsonschema.validate(value, schema)


def test_images(api):
    def ask(model: str, image: str) -> httpx.Response:
        return api.post("/api/chat", json={"model": model, "stream": False, "messages": [
            {"role": "user", "content": "What is this?", "images": [image]}]})

    reply = ask("llava", image_b64((640, 480))).json()["message"]["content"]
    assert reply.startswith("I see a PNG image of 640x480 pixels (RGB).")
    gen = api.post("/api/generate", json={"model": "gemma3", "prompt": "describe", "stream": False,
                                          "images": [image_b64((8, 8), "L", "JPEG")]}).json()
    assert gen["response"].startswith("I see a JPEG image of 8x8 pixels (L).")
    bad = ask("llava", "not*base64")
    assert (bad.status_code, bad.json()["error"]) == (400, "illegal base64 data at input byte 3")
    junk = ask("llava", base64.b64encode(b"plain text, no image").decode())
    assert junk.status_code == 400 and "unknown format" in junk.json()["error"]
    blind = ask("llama3.2", image_b64())
    assert blind.status_code == 400 and "does not support images" in blind.json()["error"]


def test_embeddings(api):
    def embed(**kw: Any) -> dict:
        return api.post("/api/embed", json={"model": "nomic-embed-text", **kw}).json()

    one = embed(input="hello world")
    assert one["model"] == "nomic-embed-text" and len(one["embeddings"]) == 1
    vec = one["embeddings"][0]
    assert len(vec) == 768 and math.isclose(sum(x * x for x in vec), 1.0, abs_tol=1e-5)
    many = embed(input=["hello world", "hello there world", "quantum tax law"])
    a, b, c = many["embeddings"]
    assert a == vec and many["prompt_eval_count"] > 0 and "total_duration" in many
    dot = lambda u, v: sum(x * y for x, y in zip(u, v))  # noqa: E731
    assert dot(a, b) > dot(a, c)
    assert len(embed(input="x", dimensions=64)["embeddings"][0]) == 64
    legacy = api.post("/api/embeddings", json={"model": "nomic-embed-text", "prompt": "hello world"})
    assert legacy.json()["embedding"] == vec
    assert api.post("/api/embed", json={"model": "nope", "input": "x"}).status_code == 404


def test_reply_with_scripts(sim, api):
    text = "Line one.\n\n  Indented  line\ttwo.\n"
    sim.reply_with(text, count=2, thinking="Let me see.")
    for _ in range(2):
        chunks = lines_of(api, "/api/chat", chat(model="qwen3", think=True))
        assert joined(chunks) == text and joined(chunks, "thinking") == "Let me see."
    assert api.post("/api/chat", json=chat(stream=False)).json()["message"]["content"] != text
    sim.reply_with("", tool_calls=[{"name": "add", "arguments": {"a": 1}}])
    call = ollama.Client(host=sim.url).chat(model="llama3.2", messages=HELLO).message.tool_calls[0]
    assert call.function.name == "add" and call.function.arguments == {"a": 1}


def test_http_error_fault_counts_and_paths(sim, api):
    sim.inject("http_error", status=503, message="busy", count=2)
    sim.inject("http_error", status=500, message="tags down", path="/api/tags")
    for _ in range(2):
        r = api.post("/api/generate", json={"model": "llama3.2", "prompt": "x"})
        assert (r.status_code, r.json()) == (503, {"error": "busy"})
    assert api.post("/api/generate", json={"model": "llama3.2", "prompt": "x"}).status_code == 200
    assert api.get("/api/tags").json() == {"error": "tags down"}
    assert api.get("/api/tags").status_code == 200
    with pytest.raises(ValueError):
        sim.inject("meltdown")


def test_stall_and_slow_faults_timing(sim, api):
    sim.inject("stall_before", seconds=0.12)
    t0 = time.perf_counter()
    lines_of(api, "/api/chat", chat())
    assert time.perf_counter() - t0 >= 0.12
    sim.inject("stall_after", after=2, seconds=0.15)
    stamps = []
    with api.stream("POST", "/api/chat", json=chat()) as resp:
        stamps.extend(time.perf_counter() for _ in resp.iter_lines())
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert len(stamps) == 41 and gaps[1] >= 0.14 and max(gaps[:1] + gaps[2:]) < gaps[1] / 2
    sim.inject("slow", token_delay=0.01)
    t0 = time.perf_counter()
    assert len(lines_of(api, "/api/generate", {"model": "llama3.2", "prompt": "[[tokens=11]]"})) == 12
    assert 0.1 <= time.perf_counter() - t0 < 0.5


def test_terminal_stream_faults(sim, api):
    sim.inject("mid_stream_error", after=3, message="out of memory")
    assert lines_of(api, "/api/chat", chat())[3:] == [{"error": "out of memory"}]
    sim.inject("malformed_line", after=2)
    with api.stream("POST", "/api/chat", json=chat()) as resp:
        raw = list(resp.iter_lines())
    assert len(raw) == 3 and [json.loads(x)["done"] for x in raw[:2]] == [False, False]
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw[2])
    sim.inject("drop", after=4)
    got: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        with api.stream("POST", "/api/chat", json=chat()) as resp:
            got.extend(resp.iter_lines())
    assert len(got) == 4 and sim.disconnects == []  # a server-side drop is not a disconnect
    assert lines_of(api, "/api/chat", chat())[-1]["done"] is True  # faults used up


def test_parallel_limit_queues_requests(sim, api):
    sim.parallel, sim.token_delay = 2, 0.03
    body, results = chat("[[tokens=6]]", stream=False), []
    one = lambda: results.append(api.post("/api/chat", json=body).status_code)  # noqa: E731
    t0 = time.perf_counter()
    threads = [threading.Thread(target=one) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    elapsed, one_round = time.perf_counter() - t0, 5 * 0.03
    assert results == [200] * 4 and sim.max_active == 2 and sim.active == 0
    assert 2 * one_round <= elapsed < 2 * one_round + 0.25  # two rounds; serial would be 0.6 s


@pytest.mark.parametrize("fault", [None, "stall_after", "stall_before"])
def test_client_disconnect_is_noticed(sim, fault):
    sim.token_delay = 0.05 if fault is None else 0.0
    if fault == "stall_after":
        sim.inject("stall_after", after=1, seconds=10)
    elif fault == "stall_before":
        sim.inject("stall_before", seconds=10)
    with httpx.Client(base_url=sim.url, timeout=0.15) as client:
        try:
            with client.stream("POST", "/api/chat", json=chat("[[tokens=200]]")) as resp:
                for i, _ in enumerate(resp.iter_lines()):
                    if i + 1 == (1 if fault else 2):
                        break
        except httpx.ReadTimeout:
            assert fault == "stall_before"
        closed = time.monotonic()
    assert sim.wait_for_disconnects(1, timeout=1.0)
    gone = sim.disconnects[0]
    assert gone.path == "/api/chat" and gone.time - closed < 1.0
    assert gone.chunks_sent == {None: 2, "stall_after": 1, "stall_before": 0}[fault]
    assert sim.active == 0  # released before the disconnect is recorded


def test_load_delay_and_keep_alive(sim, api):
    sim.load_delay = 0.1
    durations = []
    for keep_alive in ("5m", 0, "1h"):
        t0 = time.perf_counter()
        api.post("/api/chat", json=chat(model="gemma3", keep_alive=keep_alive))
        durations.append(time.perf_counter() - t0)
    assert durations[0] >= 0.1 and durations[1] < 0.05 and durations[2] >= 0.1
    loads = [api.post("/api/generate", json={"model": "gemma3", "keep_alive": k}).json() for k in (0, None)]
    assert [r["done_reason"] for r in loads] == ["unload", "load"] and loads[0]["response"] == ""


def test_models_argument():
    sim = OllamaSimulator(models=["llama3.2", "mistral:7b", ModelSpec("tiny", capabilities=("completion",))])
    assert sim.catalog.names() == ["llama3.2:latest", "mistral:7b", "tiny:latest"]
    assert sim.catalog.get("llama3.2:latest").has("tools") and sim.catalog.get("qwen3") is None


def test_keep_alive_connection_reuse_and_recording(sim):
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    conn.request("GET", "/api/version")
    assert conn.getresponse().read()
    sock = conn.sock
    conn.request("POST", "/api/chat", body=json.dumps(chat()), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.getheader("Transfer-Encoding") == "chunked" and len(resp.read().splitlines()) == 41
    assert conn.sock is sock
    conn.close()
    reqs = sim.requests
    assert [(r.method, r.path) for r in reqs] == [("GET", "/api/version"), ("POST", "/api/chat")]
    assert reqs[0].body is None and reqs[1].body["model"] == "llama3.2" and reqs[0].time <= reqs[1].time


def test_stop_is_prompt_with_open_streams():
    sim = OllamaSimulator().start()
    sim.inject("stall_after", after=1, seconds=30)
    client = httpx.Client(base_url=sim.url, timeout=5)
    resp = client.send(client.build_request("POST", "/api/chat", json=chat()), stream=True)
    lines = resp.iter_lines()
    next(lines)
    t0 = time.perf_counter()
    sim.stop()
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(httpx.HTTPError):
        list(lines)
    client.close()
    assert sim.disconnects == []  # our own shutdown is not a client disconnect
