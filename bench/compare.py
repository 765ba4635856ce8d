"""Comparing models: two columns at once (``gleitzeit_nb.compare``) vs the same two one after
the other (two one-model comparisons), measured in one run.

1. The simulator, in its own process, streams at a fixed token rate (``--token-delay``): two
   models, ``--tokens`` tokens each. Ideal ratio: 2.0 (both replies in the time of one).
2. The real llama.cpp server (``tests/llamacpp.py``: SmolLM2-135M, 4 slots, 1 thread), greedy,
   ``max_tokens`` 48: the same model twice on it (two slots of one server, sharing its CPU
   thread; also as two raw requests, to tell the server's cost from the kit's), and the
   simulator plus llama.cpp in one call (two servers). Skipped when llama.cpp is not installed.

Rounds are interleaved after one warm-up of each; medians are printed, with the ratio
sequential / concurrent (above 1: comparing at once is faster). Replay is off.

    python bench/compare.py [--tokens 40] [--token-delay 0.02] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ["GLEITZEIT_REPLAY"] = "off"  # before the kit reads it: always live, no store
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import gleitzeit_nb  # noqa: E402
from tests.llamacpp import LlamaServer, missing  # noqa: E402


def start_simulator(token_delay: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "gleitzeit_nb.testing", "--port", "0",
                             "--token-delay", str(token_delay)], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip().rsplit(" ", 1)[-1]


def run(targets: list[tuple[str, str]], prompt: str, **options) -> float:
    started = time.perf_counter()
    rows = gleitzeit_nb.compare(prompt, targets, display=None, **options)
    wall = time.perf_counter() - started
    assert (rows["status"] == "done").all(), rows[["model", "error"]]
    return wall


def raw_pair(server: LlamaServer, prompt: str, **options) -> tuple[Callable[[], float], ...]:
    """Two non-streamed requests straight to llama.cpp, at once and one after the other."""
    import httpx

    body = server.chat_body([{"role": "user", "content": prompt}], **options)

    def one(client: httpx.Client) -> None:
        client.post(f"{server.v1}/chat/completions", json=body).raise_for_status()

    def together() -> float:
        from concurrent.futures import ThreadPoolExecutor

        started = time.perf_counter()
        with httpx.Client(timeout=60) as c1, httpx.Client(timeout=60) as c2, \
                ThreadPoolExecutor(2) as pool:
            list(pool.map(one, [c1, c2]))
        return time.perf_counter() - started

    def apart() -> float:
        started = time.perf_counter()
        with httpx.Client(timeout=60) as client:
            one(client), one(client)
        return time.perf_counter() - started

    return together, apart


def versus(name: str, targets: list[tuple[str, str]], prompt: str, rounds: int,
           pair: tuple[Callable[[], float], ...] | None = None, **options) -> None:
    together, apart = pair or (
        lambda: run(targets, prompt, **options),
        lambda: sum(run([t], prompt, **options) for t in targets))
    together(), apart()  # warm-up
    times: dict[str, list[float]] = {"together": [], "apart": []}
    for i in range(rounds):
        for label, fn in (("together", together), ("apart", apart))[:: 1 if i % 2 else -1]:
            times[label].append(fn())
    a, b = statistics.median(times["together"]), statistics.median(times["apart"])
    print(f"{name}: at once {a:.3f} s, one after the other {b:.3f} s -> ratio {b / a:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=40)
    ap.add_argument("--token-delay", type=float, default=0.02)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    proc, url = start_simulator(args.token_delay)
    try:
        versus(f"simulator, 2 models x {args.tokens} tokens at {args.token_delay} s/token",
               [("llama3.2", url), ("qwen3", url)], f"Hi [[tokens={args.tokens}]]", args.rounds)
        if reason := missing():
            print(f"llama.cpp: skipped ({reason})")
            return
        server = LlamaServer(slots=4, embedding=False)
        try:
            greedy = {"temperature": 0, "seed": 1, "max_tokens": 48}
            prompt = "Write a long, detailed essay about the water cycle."
            versus("llama.cpp, smollm2 twice on one server (4 slots, 1 thread)",
                   [("smollm2", server.v1), ("smollm2", server.v1)], prompt, args.rounds, **greedy)
            versus("  the same two requests raw (httpx, not streamed)", [], prompt, args.rounds,
                   pair=raw_pair(server, prompt, max_tokens=48))
            versus("simulator + llama.cpp in one call",
                   [("llama3.2", url), ("smollm2", server.v1)],
                   prompt + f" [[tokens={args.tokens}]]", args.rounds, **greedy)
        finally:
            server.stop()
    finally:
        proc.terminate()
        proc.wait(5)


if __name__ == "__main__":
    main()
