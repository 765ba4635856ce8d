"""Replay store: time of a replayed call's lookup (key included) on a store of 1,000 recordings.

Each call is a 3-turn chat whose first turn carries a 200 kB image (sent as base64, as the
pipeline does); a lookup hashes the whole request (image decoded and hashed) and reads the
recording's file, opened by name (the folder is never listed).
Target: <= 5 ms per replayed cell.

    python bench/replay_store.py [--records 1000] [--lookups 300] [--image-kb 200]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from gleitzeit_nb.core.backend import ChatRequest  # noqa: E402
from gleitzeit_nb.core.requests import chat_request  # noqa: E402
from gleitzeit_nb.replay import Replayer, ReplayStore, chat_request_key, key_of  # noqa: E402

TARGET_MS = 5.0


def make_request(i: int, image_b64: str) -> ChatRequest:
    return chat_request("chat", {
        "model": "llava:latest",
        "messages": [
            {"role": "user", "content": f"Describe chart {i}.", "images": [image_b64]},
            {"role": "assistant", "content": "A bar chart of quarterly revenue. " * 20},
            {"role": "user", "content": "Which quarter grew fastest, and by how much?"},
        ],
        "temperature": 0.2, "seed": 7, "max_tokens": 400, "num_ctx": 8192,
        "system": "You are a careful analyst.",
    })


def canonical(request: ChatRequest) -> dict:
    return chat_request_key("ollama", request)


def median_us(samples: list[float]) -> str:
    p90 = sorted(samples)[int(len(samples) * 0.9)]
    return f"{statistics.median(samples) * 1e6:8.0f} µs (p90 {p90 * 1e6:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--lookups", type=int, default=300)
    parser.add_argument("--image-kb", type=int, default=200)
    args = parser.parse_args()
    for name in ("GLEITZEIT_REPLAY", "GLEITZEIT_STORE"):
        os.environ.pop(name, None)

    image_b64 = base64.b64encode(os.urandom(args.image_kb * 1000)).decode("ascii")
    reply = "The third quarter grew fastest, by 14 % over the second. " * 30  # ~1.7 kB
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "llm-replay"
        recorder = Replayer("record", path)
        save_times = []
        for i in range(args.records):
            req = make_request(i, image_b64)
            key = recorder.key(canonical(req))
            started = time.perf_counter()
            recorder.save(key, text=reply, status="done", model="llava:latest",
                          stats={"output_tokens": 120, "finish_reason": "stop"})
            save_times.append(time.perf_counter() - started)
        recorder.close()
        size = ReplayStore(path).size_bytes()

        replayer = Replayer("replay", path)
        requests = [make_request(i * 7 % args.records, image_b64) for i in range(args.lookups)]
        replayer.find(canonical(requests[0]))  # open the store (first-use cost reported separately)
        lookups, keys, gets = [], [], []
        for req in requests:
            started = time.perf_counter()
            _, hit = replayer.find(canonical(req))
            lookups.append(time.perf_counter() - started)
            assert hit is not None and hit.text == reply
        for req in requests:
            started = time.perf_counter()
            key = key_of(canonical(req))
            keys.append(time.perf_counter() - started)
            started = time.perf_counter()
            replayer.store.get(key)
            gets.append(time.perf_counter() - started)

        cold = Replayer("replay", path)
        started = time.perf_counter()
        cold.find(canonical(requests[0]))
        first = time.perf_counter() - started

    med_ms = statistics.median(lookups) * 1000
    print(f"store: {args.records} recordings, {size / 1e6:.1f} MB; request: 3-turn chat, "
          f"{args.image_kb} kB image ({len(image_b64) / 1e3:.0f} kB base64); "
          f"{args.lookups} lookups")
    print(f"  Replayer.find hit (key + read)   {median_us(lookups)}")
    print(f"    chat_request_key + key_of      {median_us(keys)}")
    print(f"    ReplayStore.get alone          {median_us(gets)}")
    print(f"  first lookup (opens the store)   {first * 1e6:8.0f} µs")
    print(f"  Replayer.save (one file, fsync)  {median_us(save_times)}")
    print(f"replayed-call lookup: {med_ms:.2f} ms median (target <= {TARGET_MS:.0f} ms per "
          f"replayed cell): {'PASS' if med_ms <= TARGET_MS else 'FAIL'}")


if __name__ == "__main__":
    main()
