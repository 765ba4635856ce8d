"""Notebook overhead, measured in a real kernel against the simulator (its own process).

1. A 20,000-token unthrottled reply through ``%%llm`` (live display, throttled updates) vs a raw
   httpx streaming loop in the same kernel; medians of alternating runs (target <= 1.15x).
2. ``%load_ext gleitzeit_nb`` in a fresh kernel (target <= 150 ms): see ``bench/import_time.py``.
3. Display traffic for a 2,000-token reply: see ``bench/display_traffic.py`` (run by ``./run bench``).

    python bench/magic_overhead.py [--tokens 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.kernel import Kernel  # noqa: E402

RAW = """
import httpx, json, time
t = time.perf_counter()
parts = []
with httpx.Client(base_url=URL, trust_env=False, timeout=60) as c:
    with c.stream("POST", "/api/chat", json={{"model": "llama3.2:latest", "stream": True,
            "messages": [{{"role": "user", "content": PROMPT}}]}}) as r:
        for line in r.iter_lines():
            if line:
                parts.append(json.loads(line)["message"]["content"])
print(json.dumps({{"secs": time.perf_counter() - t, "words": len("".join(parts).split())}}))
"""

MAGIC = """
import time, json
t = time.perf_counter()
get_ipython().run_cell_magic("llm", "--new -o r", PROMPT)
print(json.dumps({{"secs": time.perf_counter() - t, "words": len(r.split())}}))
"""


def start_simulator() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "gleitzeit_nb.testing", "--port", "0",
                             "--token-delay", "0"], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip().rsplit(" ", 1)[-1]


def timed(kernel: Kernel, code: str) -> dict:
    ex = kernel.run(code, timeout=300)
    assert ex.status == "ok", ex.error
    return json.loads(ex.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    proc, url = start_simulator()
    try:
        k = Kernel({"OLLAMA_HOST": url, "GLEITZEIT_DISPLAY": "live"})
        try:
            k.run(f"%load_ext gleitzeit_nb\nURL = {url!r}\nPROMPT = 'Go on [[tokens={args.tokens}]]'\n"
                  "%config LLMMagics.model = 'llama3.2:latest'")
            timed(k, RAW.format())
            timed(k, MAGIC.format())  # warm-up
            raw, magic = [], []
            for _ in range(args.runs):
                r = timed(k, RAW.format())
                m = timed(k, MAGIC.format())
                assert r["words"] == m["words"] == args.tokens, (r, m)
                raw.append(r["secs"])
                magic.append(m["secs"])
        finally:
            k.shutdown()
    finally:
        proc.terminate()
        proc.wait()
    r_med, m_med = statistics.median(raw), statistics.median(magic)
    print(f"{args.tokens}-token stream in a kernel, median of {args.runs} alternating runs")
    print(f"  raw httpx loop : {r_med * 1e3:8.1f} ms")
    print(f"  %%llm (live)   : {m_med * 1e3:8.1f} ms")
    print(f"  ratio {m_med / r_med:.3f}x   (target <= 1.15x)")


if __name__ == "__main__":
    main()
