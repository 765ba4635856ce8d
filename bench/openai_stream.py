"""Streaming overhead on a real llama.cpp server: the kit vs a raw httpx SSE loop vs ``openai``.

The real server (xllamacpp + SmolLM2-135M, ``tests/llamacpp.py``) runs in a child process. One
greedy request (temperature 0, seed 1, ``ignore_eos`` so every reply has exactly ``--tokens``
tokens) is streamed three ways, in interleaved rounds (the order rotates each round):

* kit: ``OpenAICompatibleProvider.stream_request`` consumed with ``async for``;
* raw: ``httpx.AsyncClient.stream`` + ``aiter_lines``, ``json.loads`` of each ``data:`` line,
  the ``delta.content`` parts joined;
* openai: ``AsyncOpenAI(...).chat.completions.create(stream=True)``, the official client.

All three send the same body (``stream_options.include_usage`` as the kit does) and open a
fresh connection per request (llama.cpp closes a connection after a stream without saying so).
The server's generation dominates wall time, so the informative figure is the client's CPU time
(``time.process_time`` around the whole request, in this process only: the server is another
process) per token. Medians are printed with the ratios kit/raw and kit/openai. Time to the first
non-empty content chunk is measured the same way on short replies (4 tokens, 4x the rounds).
The three texts must be identical.

    python bench/openai_stream.py [--tokens 256] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.llamacpp import LlamaServer, missing  # noqa: E402

PROMPT = "Tell me a long story about a dragon who learns to bake bread."


def body(model: str, tokens: int) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": PROMPT}],
            "temperature": 0, "seed": 1, "max_tokens": tokens}


async def kit_path(provider, model: str, tokens: int) -> tuple[str, float, int | None]:
    started = time.perf_counter()
    first = 0.0
    parts = []
    params = {**body(model, tokens), "options": {"ignore_eos": True}}
    stream = await provider.stream_request("chat", params)
    async for chunk in stream:
        if chunk.content:
            parts.append(chunk.content)
            if not first:
                first = time.perf_counter() - started
    return "".join(parts), first, stream.usage.output_tokens


async def raw_path(client, model: str, tokens: int) -> tuple[str, float, int | None]:
    started = time.perf_counter()
    first = 0.0
    parts = []
    used = None
    payload = {**body(model, tokens), "ignore_eos": True, "stream": True,
               "stream_options": {"include_usage": True}}
    async with client.stream("POST", "/chat/completions", json=payload) as resp:
        resp.raise_for_status()
        async for line in resp.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            obj = json.loads(data)
            if obj.get("usage"):
                used = obj["usage"].get("completion_tokens")
            if obj.get("choices"):
                content = obj["choices"][0].get("delta", {}).get("content")
                if content:
                    parts.append(content)
                    if not first:
                        first = time.perf_counter() - started
    return "".join(parts), first, used


async def openai_path(client, model: str, tokens: int) -> tuple[str, float, int | None]:
    started = time.perf_counter()
    first = 0.0
    parts = []
    used = None
    stream = await client.chat.completions.create(
        **body(model, tokens), stream=True, stream_options={"include_usage": True},
        extra_body={"ignore_eos": True})
    async for chunk in stream:
        if chunk.usage:
            used = chunk.usage.completion_tokens
        if chunk.choices:
            content = chunk.choices[0].delta.content
            if content:
                parts.append(content)
                if not first:
                    first = time.perf_counter() - started
    return "".join(parts), first, used


async def measure(server: LlamaServer, tokens: int, rounds: int) -> dict:
    import httpx
    from openai import AsyncOpenAI, DefaultAsyncHttpxClient

    from gleitzeit_nb.providers import OpenAICompatibleProvider

    no_reuse = httpx.Limits(max_keepalive_connections=0)
    raw_client = httpx.AsyncClient(base_url=server.v1, timeout=60, trust_env=False, limits=no_reuse)
    oa_client = AsyncOpenAI(base_url=server.v1, api_key="x", max_retries=0,
                            http_client=DefaultAsyncHttpxClient(limits=no_reuse, trust_env=False))
    provider = OpenAICompatibleProvider(base_url=server.v1)
    paths = {"kit": (kit_path, provider), "raw": (raw_path, raw_client),
             "openai": (openai_path, oa_client)}
    out: dict = {name: {"wall": [], "cpu": [], "ttfc": []} for name in paths}
    order = list(paths)
    try:
        async with provider:
            texts = {}
            for name, (fn, target) in paths.items():  # warm-up (imports, first connection)
                texts[name], _, used = await fn(target, server.model, tokens)
                assert used == tokens, (name, used)
            for r in range(rounds):
                for name in order[r % 3:] + order[:r % 3]:  # rotate who goes first
                    fn, target = paths[name]
                    wall, cpu = time.perf_counter(), time.process_time()
                    text, _, used = await fn(target, server.model, tokens)
                    out[name]["cpu"].append(time.process_time() - cpu)
                    out[name]["wall"].append(time.perf_counter() - wall)
                    assert used == tokens and text == texts[name], (name, used)
            for r in range(rounds * 4):  # time to first chunk, on short replies
                for name in order[r % 3:] + order[:r % 3]:
                    fn, target = paths[name]
                    out[name]["ttfc"].append((await fn(target, server.model, 4))[1])
            out["texts"] = texts
    finally:
        await raw_client.aclose()
        await oa_client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if reason := missing():
        print(f"skipped: {reason}")
        return
    logging.getLogger("gleitzeit_nb").setLevel(logging.WARNING)
    with LlamaServer(slots=4, embedding=False) as server:
        m = asyncio.run(measure(server, args.tokens, args.rounds))
    texts = m.pop("texts")
    same = texts["kit"] == texts["raw"] == texts["openai"]
    med = {name: {k: statistics.median(v) for k, v in d.items()} for name, d in m.items()}
    print(f"llama.cpp (SmolLM2-135M, real server), one greedy stream of {args.tokens} tokens "
          f"(ignore_eos), median of {args.rounds} interleaved rounds")
    for name, label in (("kit", "kit stream_request"), ("raw", "raw httpx SSE loop"),
                        ("openai", "openai AsyncOpenAI")):
        d = med[name]
        print(f"  {label:19s}: wall {d['wall'] * 1e3:7.1f} ms  client CPU {d['cpu'] * 1e3:6.1f} ms "
              f"= {d['cpu'] / args.tokens * 1e6:6.1f} us/token  first chunk {d['ttfc'] * 1e3:5.1f} ms")
    k = med["kit"]
    for other in ("raw", "openai"):
        o = med[other]
        print(f"  kit/{other:6s}: wall {k['wall'] / o['wall']:.3f}x  client CPU {k['cpu'] / o['cpu']:.3f}x  "
              f"first chunk {k['ttfc'] / o['ttfc']:.3f}x")
    print(f"  (first chunk: median of {args.rounds * 4} short replies of 4 tokens per path)")
    print(f"  texts identical (kit, raw, openai): {'yes' if same else 'NO'} "
          f"({len(texts['kit'])} chars)")
    if not same:
        for name, text in texts.items():
            print(f"    {name}: {text[:120]!r}")
        sys.exit(1)


if __name__ == "__main__":
    main()
