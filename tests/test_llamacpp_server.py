"""The real llama.cpp server fixture, and the server behaviour the kit's tests build on."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from .llamacpp import LlamaServer

STORY = [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]
pytestmark = pytest.mark.usefixtures("llama_installed")

LONG = 1500  # tokens; with ignore_eos ~10 s of generation, far more than any test waits


def stream_chat(server: LlamaServer, messages: list[dict[str, Any]], **params: Any) -> tuple[str, dict]:
    """A streamed chat (SSE) read to the end: the joined text and the final usage."""
    body = server.chat_body(messages, stream=True, stream_options={"include_usage": True}, **params)
    text, usage = [], {}
    with server.client.stream("POST", "/v1/chat/completions", json=body) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            usage = chunk.get("usage") or usage
            for choice in chunk["choices"]:
                text.append(choice["delta"].get("content") or "")
    return "".join(text), usage


def read_deltas(lines, n: int) -> int:
    """Read SSE lines until ``n`` content deltas arrived; how many were read."""
    got = 0
    for line in lines:
        if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
            got += 1
            if got == n:
                break
    return got


def test_chat_over_raw_httpx(llama):
    r = httpx.post(llama.v1 + "/chat/completions", json=llama.chat_body(STORY, max_tokens=20), timeout=30)
    assert r.status_code == 200
    body = r.json()
    assert body["choices"][0]["message"]["content"].strip()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 20


def test_greedy_is_deterministic_across_repeats_streaming_and_slots(llama):
    ref = llama.raw_chat(STORY, max_tokens=48)
    assert ref == llama.raw_chat(STORY, max_tokens=48)
    streamed, usage = stream_chat(llama, STORY, max_tokens=48)
    assert streamed == ref
    assert usage["completion_tokens"] == 48

    def timed(_: int) -> tuple[float, str, float]:
        start = time.monotonic()
        text = llama.raw_chat(STORY, max_tokens=48)
        return start, text, time.monotonic()

    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(timed, range(4)))
    assert [text for _, text, _ in runs] == [ref] * 4
    assert max(s for s, _, _ in runs) < min(e for _, _, e in runs), "the 4 requests did not overlap"


def test_client_disconnect_stops_generation(llama):
    before = llama.metrics()
    body = llama.chat_body(STORY, max_tokens=LONG, ignore_eos=True, stream=True)
    with llama.client.stream("POST", "/v1/chat/completions", json=body) as r:
        lines = r.iter_lines()  # kept: a dropped iterator, once collected, closes the connection
        assert read_deltas(lines, 5) == 5
        assert llama.metrics()["llamacpp:requests_processing"] == 1
    assert llama.wait_idle(1.0) < 1.0
    after = llama.metrics()
    grew = after["llamacpp:tokens_predicted_total"] - before["llamacpp:tokens_predicted_total"]
    assert 5 <= grew < LONG
    time.sleep(0.3)
    assert llama.metrics()["llamacpp:n_decode_total"] == after["llamacpp:n_decode_total"], "still decoding"
    assert not any(s["is_processing"] for s in llama.slots())


def _served_then_closed(server: LlamaServer, stream: bool) -> bool:
    """One raw HTTP/1.1 request (keep-alive by default): did the server close the socket after?"""
    host, port = server.url.removeprefix("http://").split(":")
    body = json.dumps(server.chat_body(STORY, max_tokens=8, stream=stream)).encode()
    head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        data = b""
        end = b"data: [DONE]" if stream else b'"usage"'
        while end not in data:
            chunk = sock.recv(65536)
            assert chunk, f"closed before the response ended: {data[-200:]!r}"
            data += chunk
        assert b"Connection: close" not in data.partition(b"\r\n\r\n")[0]
        sock.settimeout(1.0)
        try:
            while chunk := sock.recv(65536):
                pass
            return True
        except TimeoutError:
            return False


def test_server_closes_the_connection_after_a_stream(llama):
    """A streamed reply ends with the connection closed, though its headers promised keep-alive:
    a client that pools it can fail its next request ("Server disconnected without sending a
    response"). A non-streamed reply keeps the connection open."""
    assert _served_then_closed(llama, stream=True)
    assert not _served_then_closed(llama, stream=False)


def test_embeddings_have_576_dimensions(llama):
    r = llama.client.post("/v1/embeddings", json={"model": llama.model, "input": ["hello", "a dragon"]})
    r.raise_for_status()
    vectors = [d["embedding"] for d in r.json()["data"]]
    assert [len(v) for v in vectors] == [576, 576]
    assert vectors[0] != vectors[1]


def test_props_and_slots(llama):
    assert llama.props()["total_slots"] == 4
    assert len(llama.slots()) == 4
    assert llama.client.get("/health").json() == {"status": "ok"}


def test_keyed_server_needs_the_key(llama_keyed):
    body = llama_keyed.chat_body(STORY, max_tokens=5)
    url = llama_keyed.v1 + "/chat/completions"
    assert httpx.post(url, json=body, timeout=30).status_code == 401
    wrong = {"Authorization": "Bearer sk-wrong"}
    assert httpx.post(url, json=body, headers=wrong, timeout=30).status_code == 401
    right = {"Authorization": f"Bearer {llama_keyed.api_key}"}
    r = httpx.post(url, json=body, headers=right, timeout=30)
    assert r.status_code == 200
    assert r.json()["choices"][0]["message"]["content"]


def test_kill_mid_stream_breaks_the_connection():
    with LlamaServer(slots=1, embedding=False) as server:
        body = server.chat_body(STORY, max_tokens=LONG, ignore_eos=True, stream=True)
        with server.client.stream("POST", "/v1/chat/completions", json=body) as r:
            lines = r.iter_lines()
            assert read_deltas(lines, 3) == 3
            server.kill()
            assert not server.alive
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                for _ in lines:
                    pass


def test_stop_reaps_and_frees_the_port():
    server = LlamaServer(slots=1, embedding=False)
    assert httpx.get(server.url + "/health").status_code == 200
    server.stop()
    assert server._proc.returncode == -signal.SIGTERM
    server.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/health")


def test_no_orphan_when_the_parent_is_killed():
    """pytest killed with SIGKILL (no finalizers): the server child exits by itself."""
    script = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from llamacpp import LlamaServer\n"
        "s = LlamaServer(slots=1, embedding=False); print(s.url, s.pid, s.log_path, flush=True); time.sleep(60)"
    )
    tests_dir = str(Path(__file__).parent)
    parent = subprocess.Popen([sys.executable, "-c", script, tests_dir], stdout=subprocess.PIPE, text=True)
    try:
        url, pid, log_path = parent.stdout.readline().split()
        assert httpx.get(url + "/health").status_code == 200
    finally:
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        parent.stdout.close()
    deadline = time.monotonic() + 3
    while True:
        try:
            httpx.get(url + "/health", timeout=1)
        except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
            break  # refused, or reset while the process went
        if time.monotonic() > deadline:
            os.kill(int(pid), signal.SIGKILL)  # still serving, so the pid is still the orphan's
            pytest.fail("the server outlived its killed parent")
        time.sleep(0.05)
    deadline = time.monotonic() + 3
    while os.path.exists(log_path):  # the child removes its log when orphaned
        assert time.monotonic() < deadline, "the orphaned server left its log behind"
        time.sleep(0.05)
