"""``%llm_local`` in a real kernel, with the real llama.cpp engine and SmolLM2.

Greedy decoding is deterministic, so ``%%llm``'s text is compared with a raw request to the
engine. A kernel shutdown or restart must leave no engine: its pid and its port are checked.
"""

from __future__ import annotations

import time

import httpx
import pytest

from .conftest import require_llama
from .kernel import Kernel
from .processes import gone, refuses, wait_gone

QUESTION = "What is the capital of France?"
ENV = {"GLEITZEIT_DISPLAY": "final", "GLEITZEIT_REPLAY": "", "GLEITZEIT_STORE": ""}
ENGINE = ("(lambda s: s and [s.pid, s.url, s.model])(__import__("
          "'gleitzeit_nb.magics.local_magic', fromlist=['STATE']).STATE.server)")


def new_kernel(tmp_path, dead_url: str) -> Kernel:
    require_llama()
    k = Kernel({**ENV, "OLLAMA_HOST": dead_url}, cwd=str(tmp_path))
    ex = k.run("%load_ext gleitzeit_nb\nimport gleitzeit_nb, json")
    assert ex.status == "ok", ex.error
    return k


def engine_of(k: Kernel) -> list | None:
    """[pid, url, model] of the kernel's engine, or None."""
    return k.value(ENGINE)


@pytest.fixture
def kernel(tmp_path, dead_url):
    k = new_kernel(tmp_path, dead_url)
    yield k
    k.shutdown()


def raw_chat(url: str, model: str, text: str, max_tokens: int = 40) -> str:
    r = httpx.post(url + "/chat/completions", trust_env=False, timeout=60, json={
        "model": model, "messages": [{"role": "user", "content": text}], "temperature": 0,
        "seed": 1, "max_tokens": max_tokens})
    r.raise_for_status()
    return r.json()["choices"][0]["message"]["content"]


def test_no_server_error_names_llm_local_start(kernel):
    ex = kernel.run("%llm Hi")
    assert ex.error["ename"] == "ProviderUnavailableError"
    text = "\n".join(ex.error["traceback"])
    assert "%llm_local start" in text and "ollama serve" in text
    assert len(ex.error["traceback"]) <= 3
    assert engine_of(kernel) is None  # a hint, nothing started


def test_no_model_error_names_llm_local_start(kernel, sim):
    ex = kernel.run(f"%llm --host {sim.url} -m llama9:70b Hi")
    assert ex.error["ename"] == "ModelNotFoundError"
    text = "\n".join(ex.error["traceback"])
    assert "%llm_local start" in text and "ollama pull llama9:70b" in text
    other = kernel.run(f"%llm --host {sim.url} -t 5 Hi")  # other errors: no hint
    assert other.error["ename"] == "InvalidParamsError" and "%llm_local" not in str(other.msgs)


def test_start_then_llm_equals_a_raw_request_then_stop(kernel):
    kernel.run("%config LLMMagics.api_key_env = 'NOT_SET_ANYWHERE'")
    ex = kernel.run("%llm_local start")
    assert ex.status == "ok", ex.error
    pid, url, model = engine_of(kernel)
    assert model == "smollm2" and url.endswith("/v1")
    # the same text on every run (nbval compares it): no pid, no port
    assert ex.text() == ("Local engine ready: smollm2 on llama.cpp (4 slots); it is this "
                         "kernel's server. %llm_local status shows its URL and log.")
    assert kernel.value("[gleitzeit_nb.SETTINGS.host, gleitzeit_nb.SETTINGS.model, "
                        "gleitzeit_nb.SETTINGS.api_key_env]") == [url, "smollm2", ""]

    ex = kernel.run(f"%%llm -t 0 --seed 1 --max-tokens 40 -o r\n{QUESTION}")
    assert ex.status == "ok", ex.error
    expected = raw_chat(url, model, QUESTION)
    assert expected.strip() and kernel.value("r") == expected
    assert ex.text().startswith(expected)

    status = kernel.run("%llm_local status").text()
    assert url in status and "smollm2" in status and "4 ×" in status and "running" in status
    assert "log:" in status and len(status.splitlines()) > 6  # the log's tail

    ex = kernel.run("%llm_local stop")
    assert ex.status == "ok", ex.error
    assert f"pid {pid}" in ex.text()
    assert gone(pid) and refuses(url)  # stop waits for the process to end
    assert kernel.value("[gleitzeit_nb.SETTINGS.host, gleitzeit_nb.SETTINGS.model, "
                        "gleitzeit_nb.SETTINGS.api_key_env]") == ["", "", "NOT_SET_ANYWHERE"]
    assert engine_of(kernel) is None and "No local engine" in kernel.run("%llm_local").text()


def test_options_the_engines_model_and_a_replaced_engine(kernel):
    kernel.run("%config LLMMagics.model = 'my-choice'")
    ex = kernel.run("%llm_local start --slots 1 --ctx 1024")
    assert ex.status == "ok", ex.error
    pid, url, _ = engine_of(kernel)
    # the engine's model, not the user's: llama.cpp would answer "my-choice" with smollm2
    assert kernel.value("gleitzeit_nb.SETTINGS.model") == "smollm2"
    assert "1 × 1024 tokens" in kernel.run("%llm_local status").text()
    assert kernel.run("%llm_local start --slots 1 --ctx 1024").status == "ok"
    assert engine_of(kernel)[0] == pid  # the same settings: the same engine
    ex = kernel.run("%llm_local start --slots 2 -m smollm2")
    assert ex.status == "ok", ex.error
    pid2, url2, _ = engine_of(kernel)
    assert pid2 != pid and gone(pid) and refuses(url)  # replaced: the old one is stopped
    assert kernel.value("gleitzeit_nb.SETTINGS.host") == url2
    kernel.run("%llm_local stop")
    assert kernel.value("[gleitzeit_nb.SETTINGS.host, gleitzeit_nb.SETTINGS.model]") == \
        ["", "my-choice"]
    assert gone(pid2)


def test_bad_model_and_usage_errors(kernel, tmp_path):
    (tmp_path / "junk.gguf").write_bytes(b"not a model" * 100)
    ex = kernel.run("%llm_local start --model junk.gguf")
    assert ex.error["ename"] == "EngineError"
    text = "\n".join(ex.error["traceback"])
    assert "junk.gguf" in text and "expected 'GGUF'" in text and "failed to load model" in text
    assert "%llm_local start runs" not in text  # no "start it" hint under a failed start
    assert engine_of(kernel) is None and kernel.value("gleitzeit_nb.SETTINGS.host") == ""
    assert "UsageError" in kernel.run("%llm_local launch").stderr  # IPython prints those
    help_reply = kernel.run("%llm_local?").reply["content"]
    assert "--slots" in str(help_reply["payload"]) and "SmolLM2" in str(help_reply["payload"])


def test_a_kernel_interrupt_does_not_stop_the_engine(kernel):
    kernel.run("%llm_local start --slots 1")
    pid, url, model = engine_of(kernel)
    msg_id = kernel.kc.execute("import time; time.sleep(20)")
    time.sleep(1)
    kernel.interrupt()  # SIGINT to the kernel's process group, which holds the engine
    assert kernel.collect(msg_id).error["ename"] == "KeyboardInterrupt"
    time.sleep(0.5)
    assert not gone(pid) and raw_chat(url, model, QUESTION, max_tokens=5).strip()


def test_a_dead_engine_says_so_under_the_error(kernel):
    import os
    import signal

    kernel.run("%llm_local start --slots 1")
    pid, url, _ = engine_of(kernel)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    ex = kernel.run("%llm --max-tokens 5 Hi")
    assert ex.error["ename"] == "ProviderUnavailableError"
    assert "The local engine exited" in "\n".join(ex.error["traceback"])
    assert "EXITED" in kernel.run("%llm_local status").text()
    assert kernel.run("%llm_local start --slots 1").status == "ok"
    assert engine_of(kernel)[0] != pid and kernel.run("%llm --max-tokens 5 Hi").status == "ok"


@pytest.mark.parametrize("how", ["shutdown now", "shutdown", "restart now"])
def test_kernel_shutdown_or_restart_leaves_no_engine(tmp_path, dead_url, how):
    k = new_kernel(tmp_path, dead_url)
    try:
        ex = k.run("%llm_local start --slots 1")
        assert ex.status == "ok", ex.error
        pid, url, _ = engine_of(k)
        assert not gone(pid) and not refuses(url)
        if how == "restart now":
            k.km.restart_kernel(now=True)
            k.kc.wait_for_ready(timeout=60)
        else:
            k.kc.stop_channels()
            k.km.shutdown_kernel(now=how.endswith("now"))
        assert wait_gone(pid, url, timeout=5.0) < 5.0
        if how == "restart now":  # the new kernel works and has no engine
            assert k.run("1 + 1").status == "ok"
            assert k.run("%load_ext gleitzeit_nb").status == "ok" and engine_of(k) is None
    finally:
        if k.km.is_alive():
            k.shutdown()
