"""Record against the simulator, replay with it stopped: chat(), batch() and the magics."""

import io

import pytest
from PIL import Image

import gleitzeit_nb
from gleitzeit_nb.errors import InvalidParamsError, ReplayMissError, StreamError
from gleitzeit_nb.replay import current
from gleitzeit_nb.testing import OllamaSimulator

from .kernel import Kernel


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "rec"
    monkeypatch.setenv("GLEITZEIT_STORE", str(path))
    monkeypatch.setenv("GLEITZEIT_REPLAY", "record")
    yield path
    monkeypatch.setenv("GLEITZEIT_REPLAY", "off")
    current()


def result_text(ex) -> str:
    return ex.of_type("execute_result")[0]["content"]["data"]["text/plain"]


def png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), color).save(buf, format="PNG")
    return buf.getvalue()


def test_record_then_replay_offline(store, monkeypatch):
    with OllamaSimulator() as sim:
        url = sim.url
        a = gleitzeit_nb.chat("First question", model="llama3.2", host=url, session="s", seed=1)
        b = gleitzeit_nb.chat("Second question", model="llama3.2", host=url, session="s", seed=1)
        v = gleitzeit_nb.chat("What is this?", model="llava", host=url, images=[png("red")],
                              remember=False)
        sim.inject("mid_stream_error", after=2, message="boom")
        with pytest.raises(StreamError):
            gleitzeit_nb.chat("Will fail", model="llama3.2", host=url, remember=False)
    assert current().store.count() == 3  # the failed call was not recorded

    monkeypatch.setenv("GLEITZEIT_REPLAY", "replay")  # the simulator is gone now
    a2 = gleitzeit_nb.chat("First question", model="llama3.2", host=url, session="s2", seed=1)
    b2 = gleitzeit_nb.chat("Second question", model="llama3.2", host=url, session="s2", seed=1)
    v2 = gleitzeit_nb.chat("What is this?", model="llava", host=url, images=[png("red")],
                           remember=False)
    assert (a2, b2, v2) == (a, b, v) and b2.status == "replayed"
    assert b2.stats == b.stats and b.stats["output_tokens"] > 0 and b.stats["finish_reason"]

    for kwargs, what in (({"seed": 2}, "seed"), ({"temperature": 0.5}, "temperature")):
        with pytest.raises(ReplayMissError, match="First question") as info:
            gleitzeit_nb.chat("First question", model="llama3.2", host=url, session="m",
                              new=True, **{"seed": 1, **kwargs})
        assert "GLEITZEIT_REPLAY=record" in str(info.value), what
    with pytest.raises(ReplayMissError):  # same prompt after a different earlier turn
        gleitzeit_nb.chat("Other opener", model="llama3.2", host=url, session="x", seed=1)
    with pytest.raises(ReplayMissError):  # an image's bytes changed
        gleitzeit_nb.chat("What is this?", model="llava", host=url, images=[png("blue")],
                          remember=False)


def test_replay_without_a_model_or_server_says_to_name_the_model(store, monkeypatch, dead_url):
    monkeypatch.setenv("GLEITZEIT_REPLAY", "replay")
    with pytest.raises(InvalidParamsError, match="In replay mode name the model") as info:
        gleitzeit_nb.chat("Hello", host=dead_url)
    assert "ollama serve" in str(info.value)


def test_batch_rows_replay(store, monkeypatch):
    prompts = [f"Classify ticket {i}" for i in range(6)]
    with OllamaSimulator() as sim:
        url = sim.url
        live = gleitzeit_nb.batch(prompts, model="llama3.2", host=url, progress=False)
    assert current().store.count() == 6
    monkeypatch.setenv("GLEITZEIT_REPLAY", "replay")
    again = gleitzeit_nb.batch(prompts, model="llama3.2", host=url, progress=False)
    assert list(again) == list(live) and not again.errors
    # A row never recorded is that row's error; the others still replay.
    mixed = gleitzeit_nb.batch(prompts[:2] + ["A new ticket"] + prompts[2:], model="llama3.2",
                               host=url, progress=False)
    assert mixed.complete and list(mixed.errors) == [2]
    assert isinstance(mixed.errors[2], ReplayMissError) and "A new ticket" in str(mixed.errors[2])
    assert mixed[:2] + mixed[3:] == list(live)


def test_embeddings_record_and_replay_per_text(store, monkeypatch):
    np = pytest.importorskip("numpy")
    texts = [f"ticket {i}" for i in range(7)]
    with OllamaSimulator() as sim:
        url = sim.url
        live = gleitzeit_nb.embed(texts, model="nomic-embed-text", host=url, batch_size=3,
                                  progress=False)
    monkeypatch.setenv("GLEITZEIT_REPLAY", "replay")  # the simulator is gone now
    again = gleitzeit_nb.embed(texts[::-1], model="nomic-embed-text", host=url, batch_size=4,
                               progress=False)
    assert np.array_equal(again[::-1], live)  # keyed per text: order and batch size are free
    with pytest.raises(ReplayMissError, match="a new text"):
        gleitzeit_nb.embed(texts[:2] + ["a new text"], model="nomic-embed-text", host=url,
                           progress=False)


def test_kernel_replay_is_byte_identical(tmp_path):
    store = tmp_path / "k"
    code = ("%load_ext gleitzeit_nb\n%config LLMMagics.model = 'qwen3'\n"
            "%config LLMMagics.display = 'final'\n")
    cells = ["%%llm --think\nExplain <b>tides</b> briefly", "%%llm -o r\nAnd the moon?"]
    with OllamaSimulator() as sim:
        k = Kernel({"OLLAMA_HOST": sim.url, "GLEITZEIT_STORE": str(store), "GLEITZEIT_REPLAY": "auto"})
        k.run(code)
        recorded = [k.run(c).final_outputs() for c in cells]
        k.shutdown()
    runs = []
    for _ in range(2):  # the simulator is stopped: replay only
        k = Kernel({"OLLAMA_HOST": sim.url, "GLEITZEIT_STORE": str(store), "GLEITZEIT_REPLAY": "replay"})
        k.run(code)
        runs.append([list(k.run(c).final_outputs().values()) for c in cells])
        k.shutdown()
    assert runs[0] == runs[1]
    first = runs[0][0][0]
    assert "replayed" in first["text/markdown"] and "&lt;b>" not in first["text/plain"]
    assert [list(r.values())[0]["text/plain"].split("\n[")[0] for r in recorded] == \
        [cell[0]["text/plain"].split("\n[")[0] for cell in runs[0]]
    # Pruning: a kernel that used one of the two recordings only counts the other, until --yes.
    k = Kernel({"OLLAMA_HOST": sim.url, "GLEITZEIT_STORE": str(store), "GLEITZEIT_REPLAY": "replay"})
    try:
        k.run(code)
        k.run(cells[0])
        said = result_text(k.run("%llm_store prune"))
        assert "1 of 2 recordings" in said and "--yes" in said
        assert "pruned 1 unused recordings; 1 kept" in result_text(k.run("%llm_store prune --yes"))
    finally:
        k.shutdown()


def test_default_store_stays_beside_the_notebook_after_cd(tmp_path):
    """Under nbclient/nbval (no JPY_SESSION_NAME) the store is where the kernel started."""
    (tmp_path / "data").mkdir()
    k = Kernel({"JPY_SESSION_NAME": "", "GLEITZEIT_STORE": "", "GLEITZEIT_REPLAY": "auto"},
               cwd=str(tmp_path))
    try:
        assert k.run("import gleitzeit_nb\n%cd data").status == "ok"
        ex = k.run("from gleitzeit_nb.replay import current\nprint(current().path)")
        assert ex.stdout.strip() == str(tmp_path / "llm-replay")
    finally:
        k.shutdown()


def test_every_recording_keeps_its_request(tmp_path, monkeypatch):
    """Batches with repeated prompts and embeddings of many texts: each file has its request
    (a reviewer reads what it answers), not only the ones a short memory still held."""
    import json

    import gleitzeit_nb
    from gleitzeit_nb.testing import OllamaSimulator

    store = tmp_path / "store"
    monkeypatch.setenv("GLEITZEIT_REPLAY", "record")
    monkeypatch.setenv("GLEITZEIT_STORE", str(store))
    with OllamaSimulator() as sim:
        gleitzeit_nb.batch(["Say hi", "Say hi", "Say bye"], model="llama3.2", host=sim.url,
                           progress=False)
        gleitzeit_nb.embed([f"text {i % 90}" for i in range(200)], model="nomic-embed-text",
                           host=sim.url, batch_size=8, progress=False)
    files = [json.loads(f.read_text()) for f in store.glob("*.json")]
    assert len(files) == 2 + 90
    assert all(f.get("request") for f in files)
    assert {f["request"].get("embed") for f in files} >= {f"text {i}" for i in range(90)}
