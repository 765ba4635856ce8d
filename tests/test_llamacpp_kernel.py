"""The notebook kit against the real llama.cpp server, in a real kernel.

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
    ex = k.run("%load_ext gleitzeit_nb\nimport gleitzeit_nb, json\n"
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
    assert shown.startswith(expected) and "smollm2 · llama.cpp · " in shown  # model, server


def test_chat_function_and_models(kernel, llama):
    ex = kernel.run("import json\n"
                    f"r = gleitzeit_nb.chat({QUESTION!r}, temperature=0, seed=1, max_tokens=40,"
                    " remember=False)\nprint(json.dumps([r.text, r.usage.output_tokens]))")
    assert ex.status == "ok", ex.error
    text, tokens = json.loads(ex.stdout)
    assert text == llama.raw_chat(user(QUESTION), max_tokens=40) and 0 < tokens <= 40
    models = kernel.run("%llm_models")
    assert "smollm2" in models.of_type("execute_result")[0]["content"]["data"]["text/plain"]


def test_schema_gives_a_validated_object(kernel):
    kernel.run("schema = {'type': 'object', 'properties': {'city': {'type': 'string'}, "
               "'country': {'type': 'string'}}, 'required': ['city', 'country']}")
    ex = kernel.run("%%llm --new --schema schema -t 0 --seed 1 --max-tokens 60 -o place\n"
                    "Name a famous city and its country, as JSON.")
    assert ex.status == "ok", ex.error
    place = kernel.value("place")
    assert set(place) >= {"city", "country"} and all(isinstance(v, str) for v in place.values())


def test_chat_panel_answer_equals_a_raw_request(kernel, llama):
    ex = kernel.run("%config LLMMagics.temperature = 0\n%config LLMMagics.max_tokens = 40\n"
                    "p = %llm_chat\nr = await p.send(" + repr(QUESTION) + ")\n"
                    "print(json.dumps(r.text))")
    kernel.run("%config LLMMagics.temperature = None\n%config LLMMagics.max_tokens = None")
    assert ex.status == "ok", ex.error
    # the panel sends no seed: greedy decoding does not need one
    assert json.loads(ex.stdout) == llama.raw_chat(user(QUESTION), max_tokens=40)


def wait_processing(server: LlamaServer, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while server.metrics()["llamacpp:requests_processing"] < 1:
        assert time.monotonic() < deadline, "the request never started generating"
        time.sleep(0.02)
    time.sleep(0.5)  # some tokens out


def test_panel_stop_leaves_the_server_idle(kernel, llama):
    ex = kernel.run(f"p = %llm_chat\nt = p.send({LONG!r})")
    assert ex.status == "ok", ex.error
    wait_processing(llama)
    ex = kernel.run("p.stop()\nimport asyncio\nawait asyncio.sleep(0.2)\n"
                    "print(json.dumps([p._stream.status, len(p._stream.text)]))")
    llama.wait_idle(timeout=1.0)
    status, kept = json.loads(ex.stdout)
    assert status == "stopped" and kept > 0


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


def test_a_server_that_needs_a_key(llama_keyed, tmp_path):
    store = tmp_path / "keyed"
    k = Kernel({"GLEITZEIT_DISPLAY": "final", "GLEITZEIT_REPLAY": "",
                "GZ_TEST_KEY": LLAMA_KEY}, cwd=str(tmp_path))
    try:
        k.run("%load_ext gleitzeit_nb\n"
              f"%config LLMMagics.host = {llama_keyed.v1!r}\n%config LLMMagics.model = 'smollm2'"
              f"\n%config LLMMagics.store = {str(store)!r}\n%config LLMMagics.replay = 'record'")
        refused = k.run("%llm --max-tokens 5 Hi")
        assert refused.error["ename"] == "ProviderResponseError"
        assert "api_key_env" in refused.error["evalue"]
        ok = k.run("%config LLMMagics.api_key_env = 'GZ_TEST_KEY'\n%llm --max-tokens 5 Hi")
        assert ok.status == "ok", ok.error
        repr_ = k.run("import gleitzeit_nb.app.connections as C\n"
                      "b = C.CONNECTIONS.backend()\nprint(repr(b), vars(b))")
        everything = json.dumps([m["content"] for ex in (refused, ok, repr_) for m in ex.msgs])
        assert LLAMA_KEY not in everything
        recordings = [p.read_bytes() for p in store.glob("*.json")]
        assert recordings and not any(LLAMA_KEY.encode() in r for r in recordings)
    finally:
        k.shutdown()
