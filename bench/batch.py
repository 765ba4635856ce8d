"""Batch throughput: gleitzeit_nb.batch vs the design guide's sequential loop vs the ideal.

The simulator runs in its own process with 4 parallel slots and a fixed token rate. 32 prompts
of 30 reply tokens each go (a) one after the other through ``provider.handle_request`` (the
design guide's loop), (b) through ``run_batch`` with the default, learned concurrency. The
ideal is 8 rounds (32 prompts / 4 slots) of one reply's time, measured alone. Target: the batch
reaches >= 0.9 of the ideal throughput (time <= ideal / 0.9).

    python bench/batch.py [--prompts 32] [--parallel 4] [--token-delay 0.01] [--tokens 30]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import statistics
import subprocess
import sys
import time

from gleitzeit_nb.batch import run_batch_async
from gleitzeit_nb.providers import OllamaProvider

MODEL = "llama3.2:latest"


def start_simulator(parallel: int, token_delay: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "gleitzeit_nb.testing", "--port", "0",
                             "--parallel", str(parallel), "--token-delay", str(token_delay)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    return proc, line.rsplit(" ", 1)[-1]


def params(prompt: str) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}


async def measure(url: str, prompts: list[str], slots: int) -> dict[str, float | str]:
    provider = OllamaProvider(base_url=url)
    async with provider:
        await provider.handle_request("chat", params(prompts[0]))  # warm the connection
        singles = []
        for p in prompts[:5]:
            started = time.perf_counter()
            await provider.handle_request("chat", params(p))
            singles.append(time.perf_counter() - started)

        started = time.perf_counter()
        for p in prompts:  # the design guide's loop
            await provider.handle_request("chat", params(p))
        sequential = time.perf_counter() - started

    started = time.perf_counter()
    out = await run_batch_async(prompts, model=MODEL, host=url, progress=False)
    batch = time.perf_counter() - started
    assert not out.errors and len(out) == len(prompts)
    single = statistics.median(singles)
    return {"single": single, "ideal": math.ceil(len(prompts) / slots) * single,
            "sequential": sequential, "batch": batch,
            "concurrency": f"{out.concurrency} ({out.concurrency_source})"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--token-delay", type=float, default=0.01)
    parser.add_argument("--tokens", type=int, default=30)
    args = parser.parse_args()
    os.environ.pop("OLLAMA_NUM_PARALLEL", None)  # measure the learned default
    logging.getLogger("gleitzeit_nb").setLevel(logging.WARNING)
    proc, url = start_simulator(args.parallel, args.token_delay)
    prompts = [f"Prompt number {i}: classify this. [[tokens={args.tokens}]]"
               for i in range(args.prompts)]
    try:
        m = asyncio.run(measure(url, prompts, args.parallel))
    finally:
        proc.terminate()
        proc.wait()
    rounds = math.ceil(args.prompts / args.parallel)
    print(f"{args.prompts} prompts x {args.tokens} tokens, simulator with {args.parallel} slots, "
          f"{args.token_delay * 1e3:.0f} ms/token ({url})")
    print(f"  one reply alone      : {m['single']:6.3f} s")
    print(f"  ideal ({rounds} rounds)     : {m['ideal']:6.3f} s")
    print(f"  sequential loop      : {m['sequential']:6.3f} s   "
          f"{m['ideal'] / m['sequential']:.2f} of ideal throughput")
    print(f"  gleitzeit_nb.batch   : {m['batch']:6.3f} s   "
          f"{m['ideal'] / m['batch']:.2f} of ideal throughput   concurrency {m['concurrency']}")
    print(f"  batch vs sequential  : {m['sequential'] / m['batch']:.2f}x faster   "
          f"(target: batch >= 0.90 of ideal, i.e. <= {m['ideal'] / 0.9:.3f} s)")


if __name__ == "__main__":
    main()
