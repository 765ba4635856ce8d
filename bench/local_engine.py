"""The built-in engine (``gleitzeit_nb.local``): cold start and decoding speed on this machine.

Cold start: from calling ``gleitzeit_nb.local.start()`` (a new child process that loads
SmolLM2-135M) to the first streamed token of a chat request, median of ``--starts`` runs (each
engine is stopped before the next starts). Speed: one greedy stream of exactly ``--tokens``
tokens (``ignore_eos``), timed on the client from the first token to the last, and the same with
4 streams at once on the engine's 4 slots (total tokens / wall time). The engine's thread count
is the kit's default (``gleitzeit_nb.local.default_threads()``) unless ``--threads`` is given.

    python bench/local_engine.py [--starts 3] [--tokens 128] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gleitzeit_nb import local  # noqa: E402

PROMPT = "Write a long story about a dragon who learns to bake bread."


def stream(server: local.LocalServer, tokens: int, started: float | None = None) -> dict:
    """One greedy SSE stream; seconds to the first token (from ``started``), tokens, decode s."""
    body = {"model": server.model, "messages": [{"role": "user", "content": PROMPT}],
            "temperature": 0, "seed": 1, "max_tokens": tokens, "ignore_eos": True,
            "stream": True, "stream_options": {"include_usage": True}}
    started = time.perf_counter() if started is None else started
    first = last = 0.0
    count = 0
    with httpx.stream("POST", server.url + "/chat/completions", json=body, timeout=120,
                      trust_env=False) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                count = chunk["usage"]["completion_tokens"]
            if any(c.get("delta", {}).get("content") for c in chunk.get("choices", [])):
                last = time.perf_counter()
                first = first or last
    return {"first": first - started, "tokens": count, "decode": last - first}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--threads", type=int)
    args = ap.parse_args()
    if reason := local.missing():
        print(f"skipped: {reason}")
        return
    threads = args.threads or local.default_threads()
    print(f"machine: {os.cpu_count()} CPUs; engine: {threads} thread(s), 4 slots")

    colds = []
    for _ in range(args.starts):
        t0 = time.perf_counter()
        server = local.start(threads=threads, embeddings=False)
        ready = time.perf_counter() - t0
        cold = stream(server, 8, started=t0)["first"]
        server.stop()
        colds.append(cold)
        print(f"  start: ready in {ready:.2f} s, first token at {cold:.2f} s")
    print(f"cold start (start() to first token): median {statistics.median(colds):.2f} s "
          f"over {len(colds)}")

    with local.start(threads=threads, embeddings=False) as server:
        stream(server, 16)  # warm-up
        one = [stream(server, args.tokens) for _ in range(3)]
        rate = statistics.median((s["tokens"] - 1) / s["decode"] for s in one)
        print(f"one stream: {rate:.1f} tokens/s ({args.tokens} greedy tokens, median of 3; "
              f"first token {statistics.median(s['first'] for s in one) * 1000:.0f} ms)")
        t0 = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            four = list(pool.map(lambda _: stream(server, args.tokens), range(4)))
        wall = time.perf_counter() - t0
        print(f"4 streams at once: {sum(s['tokens'] for s in four) / wall:.1f} tokens/s in total "
              f"({wall:.2f} s for 4 × {args.tokens})")


if __name__ == "__main__":
    main()
