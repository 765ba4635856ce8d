"""A replayed %%llm cell vs a live one (simulator, its own process), timed inside a real kernel.

Target: <= 5 ms per replayed cell. Live cells stream 200 tokens unthrottled from the simulator.

    python bench/replay.py [--cells 50]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.kernel import Kernel  # noqa: E402

CELL = """
import time, json
times = []
for i in range(N):
    t = time.perf_counter()
    get_ipython().run_cell_magic("llm", "--new", f"Question {{i}} [[tokens=200]]")
    times.append(time.perf_counter() - t)
print(json.dumps(times))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cells", type=int, default=50)
    args = parser.parse_args()
    sim = subprocess.Popen([sys.executable, "-m", "gleitzeit_nb.testing", "--port", "0",
                            "--token-delay", "0"], stdout=subprocess.PIPE, text=True)
    url = sim.stdout.readline().strip().rsplit(" ", 1)[-1]
    store = Path(tempfile.mkdtemp()) / "bench-replay"
    results = {}
    try:
        for mode in ("record", "replay"):  # record = live calls (and storing); then replay them
            k = Kernel({"OLLAMA_HOST": url, "GLEITZEIT_STORE": str(store),
                        "GLEITZEIT_REPLAY": mode, "GLEITZEIT_DISPLAY": "final"})
            try:
                k.run("%load_ext gleitzeit_nb\n%config LLMMagics.model = 'llama3.2:latest'\n"
                      f"N = {args.cells}")
                ex = k.run(CELL.format(), timeout=600)
                results[mode] = json.loads(ex.stdout.strip().splitlines()[-1])
            finally:
                k.shutdown()
    finally:
        sim.terminate()
        sim.wait()
    live, replay = statistics.median(results["record"]), statistics.median(results["replay"])
    print(f"%%llm cell, 200-token reply, median of {args.cells} cells in one kernel (final display)")
    print(f"  live (simulator, recording) : {live * 1e3:7.2f} ms")
    print(f"  replayed                    : {replay * 1e3:7.2f} ms   (target <= 5 ms)")
    print(f"  replayed / live             : {replay / live:.3f}x")


if __name__ == "__main__":
    main()
