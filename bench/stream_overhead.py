"""Streaming overhead: OllamaProvider.stream_request vs a raw httpx loop over the same stream.

The simulator runs in its own process and streams a 20,000-token reply unthrottled; both loops
parse every NDJSON line and keep the text. Runs alternate, medians are compared (target: the
provider <= 1.10x the raw loop). Time to first chunk is measured the same way on short replies.

    python bench/stream_overhead.py [--tokens 20000] [--runs 7]
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

from gleitzeit_nb.providers import OllamaProvider


def start_simulator() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "gleitzeit_nb.testing", "--port", "0", "--token-delay", "0"],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    return proc, line.rsplit(" ", 1)[-1]


def body(prompt: str) -> dict:
    return {"model": "llama3.2:latest", "messages": [{"role": "user", "content": prompt}]}


async def raw_loop(client: httpx.AsyncClient, prompt: str) -> tuple[str, float]:
    started = time.perf_counter()
    first = 0.0
    parts = []
    async with client.stream("POST", "/api/chat", json={**body(prompt), "stream": True}) as resp:
        async for line in resp.aiter_lines():
            if line:
                obj = json.loads(line)
                parts.append(obj["message"]["content"])
                if not first:
                    first = time.perf_counter() - started
                if obj.get("done"):
                    break
    return "".join(parts), first


async def provider_loop(provider: OllamaProvider, prompt: str) -> tuple[str, float]:
    started = time.perf_counter()
    first = 0.0
    parts = []
    stream = await provider.stream_request("chat", body(prompt))
    async for chunk in stream:
        parts.append(chunk.content)
        if not first:
            first = time.perf_counter() - started
    return "".join(parts), first


async def measure(url: str, tokens: int, runs: int) -> dict[str, list[float]]:
    prompt = f"Write at length. [[tokens={tokens}]]"
    out: dict[str, list[float]] = {k: [] for k in
                                   ("raw_wall", "prov_wall", "raw_cpu", "prov_cpu", "raw_ttfc", "prov_ttfc")}
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=60) as client, \
            OllamaProvider(base_url=url) as provider:
        ref, _ = await raw_loop(client, prompt)  # warm up both, check they agree
        assert (await provider_loop(provider, prompt))[0] == ref
        for _ in range(runs):
            for name, fn, target in (("raw", raw_loop, client), ("prov", provider_loop, provider)):
                w, c = time.perf_counter(), time.process_time()
                text, _ = await fn(target, prompt)
                out[f"{name}_wall"].append(time.perf_counter() - w)
                out[f"{name}_cpu"].append(time.process_time() - c)
                assert len(text.split()) == tokens
        for _ in range(runs * 5):
            for name, fn, target in (("raw", raw_loop, client), ("prov", provider_loop, provider)):
                out[f"{name}_ttfc"].append((await fn(target, "Hi"))[1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    proc, url = start_simulator()
    try:
        m = {k: statistics.median(v) for k, v in asyncio.run(measure(url, args.tokens, args.runs)).items()}
    finally:
        proc.terminate()
        proc.wait()
    print(f"stream of {args.tokens} tokens, median of {args.runs} alternating runs (simulator at {url})")
    print(f"  raw httpx loop : {m['raw_wall'] * 1e3:8.1f} ms wall  {m['raw_cpu'] * 1e3:8.1f} ms client CPU")
    print(f"  OllamaProvider : {m['prov_wall'] * 1e3:8.1f} ms wall  {m['prov_cpu'] * 1e3:8.1f} ms client CPU")
    print(f"  ratio wall {m['prov_wall'] / m['raw_wall']:.3f}x   ratio client CPU "
          f"{m['prov_cpu'] / m['raw_cpu']:.3f}x   (target <= 1.10x)")
    print(f"time to first chunk, median of {args.runs * 5}: raw {m['raw_ttfc'] * 1e3:.2f} ms, "
          f"provider {m['prov_ttfc'] * 1e3:.2f} ms (ratio {m['prov_ttfc'] / m['raw_ttfc']:.2f}x)")


if __name__ == "__main__":
    main()
