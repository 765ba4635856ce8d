"""A tool round trip: the kit's tool loop vs a raw httpx loop doing the same two requests.

The simulator runs in its own process, unthrottled. Each conversation: the model calls
``get_rows(n=3)`` (the ``[[call:…]]`` directive), the function runs, its result goes back, the
model answers. The raw loop streams both requests, parses the call, runs the function and
builds the follow-up by hand; the kit runs ``ask_async`` with ``tools=[get_rows]`` (schema from
the signature, validation, display bookkeeping, session). Runs alternate; medians are compared
for both APIs (Ollama NDJSON, OpenAI SSE): the loop's own cost per conversation, in ms.

    python bench/tool_roundtrip.py [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time

import httpx

from gleitzeit_nb.app.connections import Connections
from gleitzeit_nb.app.requests import ask_async, make_request

PROMPT = 'Show me rows. [[call:get_rows {"n": 3}]]'
MODEL = "llama3.2:latest"


def get_rows(n: int) -> str:
    """The first rows of the table.

    Args:
        n: How many rows.
    """
    return "\n".join(["city,temp", "Paris,21", "Oslo,12", "Lima,19"][: n + 1])


SCHEMA = {"type": "function", "function": {
    "name": "get_rows", "description": "The first rows of the table.",
    "parameters": {"type": "object", "properties": {"n": {"type": "integer",
                                                          "description": "How many rows."}},
                   "required": ["n"]}}}


def start_simulator() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "gleitzeit_nb.testing", "--port", "0",
                             "--token-delay", "0"], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip().rsplit(" ", 1)[-1]


async def raw_ollama(client: httpx.AsyncClient) -> str:
    messages = [{"role": "user", "content": PROMPT}]
    for _ in range(2):
        parts, calls = [], []
        async with client.stream("POST", "/api/chat", json={
                "model": MODEL, "messages": messages, "tools": [SCHEMA], "stream": True}) as resp:
            async for line in resp.aiter_lines():
                if line:
                    msg = json.loads(line)["message"]
                    parts.append(msg.get("content", ""))
                    calls += msg.get("tool_calls") or []
        if not calls:
            return "".join(parts)
        messages.append({"role": "assistant", "content": "".join(parts), "tool_calls": calls})
        for call in calls:
            fn = call["function"]
            messages.append({"role": "tool", "tool_name": fn["name"],
                             "content": get_rows(**fn["arguments"])})
    raise AssertionError("no answer")


async def raw_openai(client: httpx.AsyncClient) -> str:
    messages = [{"role": "user", "content": PROMPT}]
    for _ in range(2):
        parts, calls = [], {}
        async with client.stream("POST", "/v1/chat/completions", json={
                "model": MODEL, "messages": messages, "tools": [SCHEMA], "stream": True}) as resp:
            async for line in resp.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                delta = json.loads(line[6:])["choices"][0]["delta"]
                parts.append(delta.get("content") or "")
                for d in delta.get("tool_calls") or []:
                    c = calls.setdefault(d["index"], {"id": "", "name": "", "arguments": ""})
                    c["id"] += d.get("id") or ""
                    c["name"] += d.get("function", {}).get("name") or ""
                    c["arguments"] += d.get("function", {}).get("arguments") or ""
        if not calls:
            return "".join(parts)
        messages.append({"role": "assistant", "content": "".join(parts), "tool_calls": [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in calls.values()]})
        for c in calls.values():
            messages.append({"role": "tool", "tool_call_id": c["id"],
                             "content": get_rows(**json.loads(c["arguments"]))})
    raise AssertionError("no answer")


async def kit(conn: Connections, host: str) -> str:
    req = make_request(PROMPT, model=MODEL, host=host, tools=[get_rows], remember=False)
    reply = await ask_async(req, None, conn)
    assert reply.tool_calls and reply.tool_calls[0].status == "ok"
    return str(reply)


async def measure(url: str, runs: int) -> dict[str, dict[str, float]]:
    out = {}
    conn = Connections()
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=60) as client:
        for api, raw, host in (("ollama", raw_ollama, url), ("openai", raw_openai, url + "/v1")):
            ref = await raw(client)
            assert await kit(conn, host) == ref, "the kit and the raw loop disagree"
            times: dict[str, list[float]] = {"raw": [], "kit": []}
            for _ in range(runs):
                for name in ("raw", "kit"):
                    start = time.perf_counter()
                    await (raw(client) if name == "raw" else kit(conn, host))
                    times[name].append(time.perf_counter() - start)
            out[api] = {k: statistics.median(v) for k, v in times.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    proc, url = start_simulator()
    try:
        result = asyncio.run(measure(url, args.runs))
    finally:
        proc.terminate()
        proc.wait()
    print(f"tool conversation (call get_rows, result back, answer): median of {args.runs} "
          f"alternating runs, simulator at {url}")
    for api, m in result.items():
        print(f"  {api:31s} raw {m['raw'] * 1e3:6.2f} ms   kit {m['kit'] * 1e3:6.2f} ms   "
              f"loop overhead {(m['kit'] - m['raw']) * 1e3:+6.2f} ms   ratio {m['kit'] / m['raw']:.3f}x")
    print("(the kit's OpenAI transport opens a connection per request: llama.cpp stalls a reused "
          "one after a stream; the raw loop reuses its connection)")
    print("(the simulator answers in about a millisecond; against a model a round trip takes "
          "tenths of a second or more, so the overhead in ms is the figure that matters)")


if __name__ == "__main__":
    main()
