"""CLI: ``python -m gleitzeit_nb.testing [--host H] [--port P] [--token-delay S]
[--parallel N] [--load-delay S] [--api-key KEY]`` serves until Ctrl+C or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Sequence

from .server import OllamaSimulator


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator in the foreground."""
    parser = argparse.ArgumentParser(prog="python -m gleitzeit_nb.testing",
                                     description="Serve a simulated Ollama API "
                                                 "(and the OpenAI API under /v1).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434, help="0 picks a free port")
    parser.add_argument("--token-delay", type=float, default=0.02,
                        help="seconds between streamed tokens (default 0.02)")
    parser.add_argument("--parallel", type=int, default=None,
                        help="max simultaneous generations (default unlimited)")
    parser.add_argument("--load-delay", type=float, default=0.0,
                        help="seconds a model takes to load on first use")
    parser.add_argument("--api-key", default=None,
                        help="require 'Authorization: Bearer KEY' on the /v1 routes")
    parser.add_argument("--model", action="append", dest="models", metavar="NAME",
                        help="serve this model (repeatable; default: the built-in set)")
    args = parser.parse_args(argv)

    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    sim = OllamaSimulator(host=args.host, port=args.port, models=args.models,
                          token_delay=args.token_delay, parallel=args.parallel,
                          load_delay=args.load_delay, api_key=args.api_key)
    try:
        sim.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"Ollama simulator listening on {sim.url}", flush=True)
        while not done.wait(0.2):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
