"""Batch throughput on a real llama.cpp server: ``gleitzeit_nb.batch`` vs a raw asyncio+httpx loop.

The real server (xllamacpp + SmolLM2-135M, ``tests/llamacpp.py``) runs in a child process with 4
slots. 16 prompts that ask for long answers go, greedy (temperature 0, seed 1) with
``max_tokens`` 48, (a) through ``run_batch_async`` (progress off, ``concurrency=None``: the kit
reads the server's 4 slots from ``/props``) and (b) through a raw loop: ``asyncio.gather`` of
non-streamed ``POST /v1/chat/completions`` behind a semaphore of 4, and (c) the same loop streamed
(SSE, as the kit always streams), which separates the cost of streaming from the kit's own.
Runs are interleaved (the order reverses each round) after one warm-up of each. Throughput is
output tokens / wall time (the kit's tokens from its per-row stats, the raw loops' from
``usage``); the medians are compared (target: kit/raw >= 0.85, raw being the non-streamed loop). The kit's answers must be
in input order and equal to the raw loops' texts. Replay is off (``GLEITZEIT_REPLAY=off``).

    python bench/batch_llamacpp.py [--prompts 16] [--tokens 48] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from pathlib import Path

os.environ["GLEITZEIT_REPLAY"] = "off"  # before the kit reads it: always live, no store
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.llamacpp import LlamaServer, missing  # noqa: E402

TOPICS = ["the history of Rome", "how volcanoes form", "the life of honey bees",
          "the invention of the printing press", "how airplanes fly", "the water cycle",
          "the French Revolution", "how computers work", "the solar system",
          "the rainforests of the Amazon", "the history of chess", "how the heart works",
          "the Great Wall of China", "the migration of birds", "how bread is made",
          "the ocean's deepest places"]


def prompts(n: int) -> list[str]:
    return [f"Write a long, detailed essay about {TOPICS[i % len(TOPICS)]}."
            + (f" (part {i // len(TOPICS) + 1})" if i >= len(TOPICS) else "") for i in range(n)]


async def kit_run(server: LlamaServer, items: list[str], tokens: int
                  ) -> tuple[list[str], list[int], float]:
    from gleitzeit_nb.batch import run_batch_async

    started = time.perf_counter()
    out = await run_batch_async(items, model=server.model, host=server.v1, temperature=0, seed=1,
                                max_tokens=tokens, concurrency=None, progress=False)
    wall = time.perf_counter() - started
    assert not out.errors and out.complete, out.errors
    assert out.concurrency == 4 and out.concurrency_source == "server slots", \
        (out.concurrency, out.concurrency_source)
    return list(out), [s["output_tokens"] for s in out.stats], wall


async def raw_run(client, server: LlamaServer, items: list[str], tokens: int
                  ) -> tuple[list[str], list[int], float]:
    gate = asyncio.Semaphore(4)

    async def one(prompt: str) -> tuple[str, int]:
        async with gate:
            r = await client.post("/chat/completions", json=server.chat_body(
                [{"role": "user", "content": prompt}], max_tokens=tokens))
            r.raise_for_status()
            data = r.json()
            return data["choices"][0]["message"]["content"], data["usage"]["completion_tokens"]

    started = time.perf_counter()
    results = await asyncio.gather(*(one(p) for p in items))
    wall = time.perf_counter() - started
    return [t for t, _ in results], [n for _, n in results], wall


async def raw_stream_run(client, server: LlamaServer, items: list[str], tokens: int
                         ) -> tuple[list[str], list[int], float]:
    """The raw loop, streamed (as the kit always is): SSE lines parsed, deltas joined."""
    import json

    gate = asyncio.Semaphore(4)

    async def one(prompt: str) -> tuple[str, int]:
        body = server.chat_body([{"role": "user", "content": prompt}], max_tokens=tokens,
                                stream=True, stream_options={"include_usage": True})
        parts, used = [], 0
        async with gate, client.stream("POST", "/chat/completions", json=body) as r:
            r.raise_for_status()
            async for line in r.aiter_lines():
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                obj = json.loads(line[5:])
                if obj.get("usage"):
                    used = obj["usage"]["completion_tokens"]
                if obj.get("choices"):
                    parts.append(obj["choices"][0]["delta"].get("content") or "")
        return "".join(parts), used

    started = time.perf_counter()
    results = await asyncio.gather(*(one(p) for p in items))
    wall = time.perf_counter() - started
    return [t for t, _ in results], [n for _, n in results], wall


async def measure(server: LlamaServer, items: list[str], tokens: int, rounds: int) -> dict:
    import httpx

    out: dict = {"kit": [], "raw": [], "raw_stream": []}
    async with httpx.AsyncClient(base_url=server.v1, timeout=120, trust_env=False,
                                 limits=httpx.Limits(max_keepalive_connections=0)) as client:
        runs = {"kit": lambda: kit_run(server, items, tokens),
                "raw": lambda: raw_run(client, server, items, tokens),
                "raw_stream": lambda: raw_stream_run(client, server, items, tokens)}
        first = {name: await fn() for name, fn in runs.items()}  # warm-up
        texts = {name: r[0] for name, r in first.items()}
        for r in range(rounds):
            order = list(runs)
            for name in (order if r % 2 == 0 else order[::-1]):
                answers, used, wall = await runs[name]()
                assert answers == texts[name], f"{name}: answers changed between runs"
                assert used == first[name][1], f"{name}: token counts changed between runs"
                out[name].append((sum(used), wall))
    out["texts"] = texts
    out["tokens"] = {name: r[1] for name, r in first.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if reason := missing():
        print(f"skipped: {reason}")
        return
    logging.getLogger("gleitzeit_nb").setLevel(logging.WARNING)
    items = prompts(args.prompts)
    with LlamaServer(slots=4, embedding=False) as server:
        m = asyncio.run(measure(server, items, args.tokens, args.rounds))
    texts, row_tokens = m.pop("texts"), m.pop("tokens")
    print(f"llama.cpp (SmolLM2-135M, real server, 4 slots): {args.prompts} prompts x max_tokens "
          f"{args.tokens}, greedy; median of {args.rounds} interleaved rounds")
    rate = {}
    for name, label in (("kit", "gleitzeit_nb.batch"), ("raw", "raw httpx, 4 at once"),
                        ("raw_stream", "raw httpx streamed")):
        used = statistics.median(u for u, _ in m[name])
        wall = statistics.median(w for _, w in m[name])
        rate[name] = statistics.median(u / w for u, w in m[name])
        walls = ", ".join(f"{w:.2f}" for _, w in m[name])
        print(f"  {label:21s}: {used:4.0f} tokens in {wall:5.2f} s = {rate[name]:6.1f} tokens/s "
              f"(runs: {walls} s)")
    print(f"  throughput kit/raw {rate['kit'] / rate['raw']:.3f}x (target >= 0.85): "
          f"{'PASS' if rate['kit'] / rate['raw'] >= 0.85 else 'FAIL'}   "
          f"kit/raw streamed {rate['kit'] / rate['raw_stream']:.3f}x")
    full = sum(n == args.tokens for n in row_tokens["raw"])
    print(f"  replies that hit max_tokens: {full}/{args.prompts}; output tokens per row equal "
          f"(kit, raw, streamed): "
          f"{'yes' if row_tokens['kit'] == row_tokens['raw'] == row_tokens['raw_stream'] else 'NO'}")
    same = texts["kit"] == texts["raw"] == texts["raw_stream"]
    print(f"  answers in input order and equal to the raw loops': {'yes' if same else 'NO'}")
    if not same:
        for i, (a, b) in enumerate(zip(texts["kit"], texts["raw"])):
            if a != b:
                print(f"    row {i}: kit {a[:60]!r} raw {b[:60]!r}")
        sys.exit(1)


if __name__ == "__main__":
    main()
