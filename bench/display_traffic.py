"""Display traffic of a streamed reply: ReplyDisplay (live) vs a naive per-token renderer.

In one real kernel a 2,000-token reply ("word " deltas at a realistic pace, 100 tokens/s by
default, so ~20 s each) is streamed twice: through ``ReplyDisplay(mode="live")`` and through a
renderer that updates the display with the full Markdown on every token. Every iopub display
message is counted and its content measured as the kernel serialised it. Targets: <= 12 updates/s
and <= 1/10 of the naive bytes.

    python bench/display_traffic.py [--tokens 2000] [--rate 100]
"""

from __future__ import annotations

import argparse
import json
import os
import queue

from jupyter_client import KernelManager

OURS = """
import time
from gleitzeit_nb.notebook.display import ReplyDisplay
d = ReplyDisplay(model="llama3.2:latest", mode="live")
cpu, t0 = time.process_time(), time.monotonic()
d.start()
for i in range({tokens}):
    d.add("word ")
    time.sleep({pause})
d.finish(stats={{"output_tokens": {tokens}, "generation_seconds": {tokens} / {rate}, "input_tokens": 12}})
print(json.dumps({{"seconds": time.monotonic() - t0, "cpu": time.process_time() - cpu}}))
"""

NAIVE = """
import time
from IPython.display import Markdown, display
cpu, t0 = time.process_time(), time.monotonic()
handle, text = display(Markdown(""), display_id=True), ""
for i in range({tokens}):
    text += "word "
    handle.update(Markdown(text))
    time.sleep({pause})
print(json.dumps({{"seconds": time.monotonic() - t0, "cpu": time.process_time() - cpu}}))
"""


def run(km: KernelManager, kc, code: str) -> dict:
    """Execute ``code``; count its display messages and their serialised content size."""
    msg_id = kc.execute(code)
    count, size, out = 0, 0, ""
    while True:
        try:
            msg = kc.get_iopub_msg(timeout=120)
        except queue.Empty as exc:
            raise TimeoutError("kernel went quiet") from exc
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind in ("display_data", "update_display_data"):
            count += 1
            size += len(km.session.pack(msg["content"]))  # the bytes of the content frame
        elif kind == "stream":
            out += msg["content"]["text"]
        elif kind == "error":
            raise RuntimeError("\n".join(msg["content"]["traceback"]))
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            break
    kc.get_shell_msg(timeout=10)
    return {"messages": count, "bytes": size, **(json.loads(out) if out.strip() else {})}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="tokens per second")
    args = parser.parse_args()
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env={**os.environ, "GLEITZEIT_DISPLAY": ""})
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        run(km, kc, "import json")
        fmt = {"tokens": args.tokens, "rate": args.rate, "pause": 1 / args.rate}
        ours, naive = run(km, kc, OURS.format(**fmt)), run(km, kc, NAIVE.format(**fmt))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    print(f"{args.tokens} tokens at {args.rate:g} tokens/s, one kernel, display messages on iopub:")
    for name, r in (("ReplyDisplay live", ours), ("naive per token", naive)):
        print(f"  {name:18s} {r['messages']:6d} messages in {r['seconds']:5.1f} s = "
              f"{r['messages'] / r['seconds']:6.1f}/s  {r['bytes'] / 1e6:8.3f} MB  kernel CPU {r['cpu']:.2f} s")
    print(f"  updates/s {ours['messages'] / ours['seconds']:.1f} (target <= 12)   "
          f"messages {ours['messages'] / naive['messages']:.3f}x   "
          f"bytes {ours['bytes'] / naive['bytes']:.3f}x = 1/{naive['bytes'] / ours['bytes']:.0f} (target <= 1/10)")


if __name__ == "__main__":
    main()
