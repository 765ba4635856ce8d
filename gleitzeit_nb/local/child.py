"""The engine's child process: llama.cpp's server (``xllamacpp``) in its own process.

Run as a script (``python child.py CONFIG_JSON``), never imported by the kit: ``xllamacpp`` is
imported here only. It starts the server on 127.0.0.1, port 0 (a free one), prints
``LISTENING <url>`` on stdout and then only watches its parent: when the parent is gone (it was
reparented) it exits, so no engine outlives its kernel. llama.cpp logs to stderr (the log file).
Stopping it is a signal (SIGTERM, SIGKILL); SIGINT is ignored, because a kernel interrupt is sent
to the kernel's whole process group. Only the standard library is imported besides xllamacpp.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time

POLL_SECONDS = 0.2


def serve(config: dict) -> None:
    """Start the server from ``config`` (see ``gleitzeit_nb.local.engine``) and watch the parent."""
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = config["model_path"]
    p.model_alias = {config["alias"]}  # must be a set: a string is split into characters
    p.hostnames = ["127.0.0.1"]
    p.port = 0  # the server binds a free port; listening_address has it
    p.n_ctx = config["ctx"] * config["slots"]  # shared by the slots: ctx each
    p.n_parallel = config["slots"]
    p.cpuparams.n_threads = p.cpuparams_batch.n_threads = config["threads"]
    p.endpoint_slots = p.endpoint_metrics = True
    if config["embeddings"]:
        p.embedding = True
        p.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    server = xllamacpp.Server(p)
    sys.stdout.write(f"LISTENING {server.listening_address}\n")
    sys.stdout.flush()
    os.dup2(2, 1)  # anything printed later goes to the log, never into a pipe nobody reads
    threading.Event().wait()  # serve until the parent watch (or a signal) ends the process


def watch_parent(config: dict) -> None:
    """Exit once the parent is gone (reparented), also while the model is still loading; its
    log folder goes too, since nobody is left to read it."""
    while os.getppid() == config["parent"]:
        time.sleep(POLL_SECONDS)
    leave(config, 0)


def leave(config: dict, code: int) -> None:
    if config.get("log_dir"):
        shutil.rmtree(config["log_dir"], ignore_errors=True)
    os._exit(code)  # no ~Server: it would wait for requests in flight


def main() -> None:
    config = json.loads(sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM from stop() (it removes the folder itself) or a kernel's cleanup (nobody else does)
    signal.signal(signal.SIGTERM, lambda *_: leave(config, 0))
    if os.getppid() != config["parent"]:
        return  # the parent died before we started
    threading.Thread(target=watch_parent, args=(config,), daemon=True).start()
    try:
        serve(config)
    except BaseException as exc:  # noqa: BLE001: a failed load must say why in the log
        time.sleep(0.3)  # llama.cpp logs from a thread of its own: let it write why first
        sys.stderr.write(f"\nENGINE FAILED: {type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
        os._exit(1)


if __name__ == "__main__":
    main()
