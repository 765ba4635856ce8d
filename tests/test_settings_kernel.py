"""One settings object: ``%config LLMMagics`` sets chat(), batch(), embed() and the panels too,
and a replay run needs no server and no ``model=``. A real kernel, the simulator over HTTP."""

from __future__ import annotations

import pytest

from .kernel import Kernel

SHARED_SIM = True


@pytest.fixture(scope="module")
def kernel(shared_sim, dead_url_module, tmp_path_factory):
    store = tmp_path_factory.mktemp("store") / "settings"
    # OLLAMA_HOST points nowhere: every request must follow %config LLMMagics.host.
    k = Kernel({"OLLAMA_HOST": dead_url_module, "GLEITZEIT_DISPLAY": "final",
                "GLEITZEIT_REPLAY": "", "GLEITZEIT_STORE": ""})
    ex = k.run("%load_ext gleitzeit_nb\nimport gleitzeit_nb\n"
               f"%config LLMMagics.store = {str(store)!r}")
    assert ex.status == "ok", ex.error
    yield k
    k.shutdown()


@pytest.fixture(scope="module")
def dead_url_module():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def bodies(sim, path):
    return [r.body for r in sim.requests if r.path == path]


def test_config_sets_every_entry_point(kernel, sim):
    ex = kernel.run(f"%config LLMMagics.host = {sim.url!r}\n"
                    "%config LLMMagics.model = 'qwen3'\n"
                    "%config LLMMagics.temperature = 0.3\n"
                    "%config LLMMagics.max_tokens = 7\n"
                    "%config LLMMagics.embed_model = 'nomic-embed-text'\n"
                    "r = gleitzeit_nb.chat('one [[tokens=20]]', remember=False)\n"
                    "b = gleitzeit_nb.batch(['two', 'three'], progress=False)\n"
                    "v = gleitzeit_nb.embed(['four', 'five'], progress=False)\n"
                    "p = gleitzeit_nb.ChatPanel()\n"
                    "print(len(r.split()), len(b), v.shape[0], p.model, p.max_tokens)")
    assert ex.status == "ok", ex.error
    assert ex.stdout.split() == ["7", "2", "2", "qwen3", "7"]
    chats = bodies(sim, "/api/chat")
    assert len(chats) == 3
    assert {c["model"] for c in chats} == {"qwen3:latest"}
    assert all(c["options"] == {"temperature": 0.3, "num_predict": 7} for c in chats)
    assert bodies(sim, "/api/embed")[0]["model"] == "nomic-embed-text:latest"
    # a keyword wins over the setting, for this call only
    ex = kernel.run("r = gleitzeit_nb.chat('six', model='llama3.2', temperature=0.9, "
                    "remember=False)")
    assert ex.status == "ok", ex.error
    assert bodies(sim, "/api/chat")[-1]["model"] == "llama3.2:latest"
    assert bodies(sim, "/api/chat")[-1]["options"]["temperature"] == 0.9


def test_replay_offline_without_model(kernel, sim):
    """Record in auto mode, then replay with the server gone: no model= anywhere."""
    setup = (f"%config LLMMagics.host = {sim.url!r}\n%config LLMMagics.model = 'llama3.2'\n"
             "%config LLMMagics.embed_model = 'nomic-embed-text'\n"
             "%config LLMMagics.temperature = 0.0\n%config LLMMagics.replay = 'auto'\n")
    calls = ("r = gleitzeit_nb.chat('seven [[tokens=5]]', remember=False)\n"
             "b = gleitzeit_nb.batch(['eight', 'nine'], progress=False)\n"
             "v = gleitzeit_nb.embed(['ten'], progress=False)\n"
             "print(r.status, list(b), b.errors, v.shape)\n")
    live = kernel.run(setup + calls)
    assert live.status == "ok", live.error
    assert live.stdout.startswith("done ")
    sim.stop()
    try:
        replayed = kernel.run("%config LLMMagics.replay = 'replay'\n" + calls)
        assert replayed.status == "ok", replayed.error
        assert replayed.stdout.replace("replayed ", "done ", 1) == live.stdout
    finally:
        sim.start()
        kernel.run("%config LLMMagics.replay = 'off'")


def test_settings_from_code_before_and_after_load_ext(sim, dead_url_module):
    k = Kernel({"OLLAMA_HOST": dead_url_module, "GLEITZEIT_DISPLAY": "final",
                "GLEITZEIT_REPLAY": ""})
    try:
        ex = k.run(f"import gleitzeit_nb\ngleitzeit_nb.SETTINGS.host = {sim.url!r}\n"
                   "gleitzeit_nb.SETTINGS.model = 'qwen3'\n%load_ext gleitzeit_nb\n"
                   "gleitzeit_nb.SETTINGS.temperature = 0.1\n%llm hi\n"
                   "print(get_ipython().find_magic('llm').__self__.model)")
        assert ex.status == "ok", ex.error
        assert ex.stdout.strip().endswith("qwen3")  # %config LLMMagics shows what is in force
        body = bodies(sim, "/api/chat")[-1]
        assert body["model"] == "qwen3:latest" and body["options"] == {"temperature": 0.1}
    finally:
        k.shutdown()
