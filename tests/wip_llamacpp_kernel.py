"""WORK IN PROGRESS (not collected: the file name does not start with test_): these kernel
tests against the real llama.cpp server failed or hung in the session that wrote them (a
60 s read timeout on the raw reference request after %%llm; the interrupt left no partial in
-o; see the closing note of stop 9). Rename to test_*.py once they pass.

The notebook kit against the real llama.cpp server, in a real kernel.

Greedy decoding (temperature 0, seed 1) is deterministic, so what the kit shows and returns is
compared with a raw request's text. Stopping is checked on the server's own metrics.
"""

from __future__ import annotations

import json
import time

import pytest

from .conftest import LLAMA_KEY
from .kernel import Kernel
from .llamacpp import LlamaServer

QUESTION = "What is the capital of France?"
GREEDY = "-t 0 --seed 1 --max-tokens 40"
LONG = "Write a very long story about a dragon, with many chapters."


@pytest.fixture(scope="module")
def kernel(llama, tmp_path_factory):
    k = Kernel({"GLEITZEIT_DISPLAY": "final", "GLEITZEIT_REPLAY": "", "GLEITZEIT_STORE": ""},
               cwd=str(tmp_path_factory.mktemp("nb")))
    ex = k.run("%load_ext gleitzeit_nb\nimport gleitzeit_nb\n"
               f"%config LLMMagics.host = {llama.v1!r}\n%config LLMMagics.model = 'smollm2'")
    assert ex.status == "ok", ex.error
    yield k
    k.shutdown()


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_llm_magic_text_equals_a_raw_request(kernel, llama):
    ex = kernel.run(f"%%llm --new {GREEDY} -o r\n{QUESTION}")
    assert ex.status == "ok", ex.error
    expected = llama.raw_chat(user(QUESTION), max_tokens=40)
    assert expected.strip()
    assert kernel.value("r") == expected
    shown = ex.text("text/plain")
    assert shown.startswith(expected) and "smollm2" in shown


def test_batch_answers_in_order_and_embed(kernel, llama):
    prompts = ["Capital of Spain?", "Capital of Italy?", "Name a colour.", "Say hello.",
               "Capital of Peru?"]
    ex = kernel.run(f"b = gleitzeit_nb.batch({prompts!r}, temperature=0, seed=1, max_tokens=24,"
                    " progress=False)\nprint(json.dumps([list(b), b.concurrency, "
                    "b.concurrency_source]))")
    assert ex.status == "ok", ex.error
    answers, concurrency, source = json.loads(ex.stdout)
    assert (concurrency, source) == (4, "server slots")  # llama.cpp publishes its slots
    assert answers == [llama.raw_chat(user(p), max_tokens=24) for p in prompts]
    ex = kernel.run("v = gleitzeit_nb.embed(['a notebook', 'a report'], progress=False)\n"
                    "print(json.dumps(v.tolist()))")
    assert ex.status == "ok", ex.error
    vectors = json.loads(ex.stdout)
    raw = llama.client.post("/v1/embeddings", json={"model": "smollm2",
                                                    "input": ["a notebook", "a report"]}).json()
    assert len(vectors) == 2 and len(vectors[0]) == 576
    for got, want in zip(vectors, sorted(raw["data"], key=lambda d: d["index"])):
        assert max(abs(a - b) for a, b in zip(got, want["embedding"])) < 1e-5


def wait_processing(server: LlamaServer, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while server.metrics()["llamacpp:requests_processing"] < 1:
        assert time.monotonic() < deadline, "the request never started generating"
        time.sleep(0.02)
    time.sleep(0.5)  # some tokens out


def test_interrupt_leaves_the_server_idle_and_keeps_the_partial(kernel, llama):
    kernel.run("r = None")
    msg_id = kernel.kc.execute(f"%%llm --new --max-tokens 3000 -o r\n{LONG}")
    wait_processing(llama)
    kernel.interrupt()
    stopped_at = time.monotonic()
    ex = kernel.collect(msg_id)
    took = llama.wait_idle(timeout=1.0)
    assert time.monotonic() - stopped_at < 5 and took <= 1.0
    assert ex.error["ename"] == "KeyboardInterrupt"
    assert len(kernel.value("r") or "") > 0  # the partial answer is kept in -o
    assert kernel.run("1 + 1").status == "ok"


def test_server_killed_mid_stream(llama_installed, tmp_path):
    server = LlamaServer(slots=1, embedding=False)
    k = Kernel({"GLEITZEIT_DISPLAY": "final", "GLEITZEIT_REPLAY": ""}, cwd=str(tmp_path))
    try:
        k.run("%load_ext gleitzeit_nb\n"
              f"%config LLMMagics.host = {server.v1!r}\n%config LLMMagics.model = 'smollm2'")
        msg_id = k.kc.execute(f"%%llm --max-tokens 3000 -o r\n{LONG}")
        wait_processing(server)
        server.kill()
        ex = k.collect(msg_id, timeout=30)
        assert ex.error is not None and ex.error["ename"] == "StreamError"
        assert len(ex.error["traceback"]) <= 3  # one readable line and the %tb hint
        assert "kept in .partial" in ex.error["evalue"]
        assert len(k.value("r")) > 0
        assert k.run("print(6 * 7)").stdout.strip() == "42"
    finally:
        k.shutdown()
        server.stop()


