"""Record/replay: call keys, the SQLite store and the modes (durability: test_replay_durability)."""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from gleitzeit_nb.core.backend import ChatRequest
from gleitzeit_nb.core.requests import chat_request
from gleitzeit_nb.errors import InvalidParamsError, LLMError
from gleitzeit_nb.providers.ollama import OllamaProvider
from gleitzeit_nb.replay import (Recording, ReplayMissError, Replayer, ReplayStore,
                                 ReplayStoreError, chat_request_key, key_of, resolve)

from .replay_data import IMAGE, OTHER_IMAGE, params, rec, request

@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("GLEITZEIT_REPLAY", "GLEITZEIT_STORE", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)


def test_plain_python_without_ipython():
    code = ("import base64, sys, gleitzeit_nb.replay as r\n"
            "from gleitzeit_nb.core.requests import chat_request\n"
            "image = base64.b64encode(bytes(range(96))).decode()\n"
            "r.key_of(r.chat_request_key('ollama', chat_request('chat', {'model': 'm', "
            "'system': 's', 'messages': [{'role': 'user', 'content': 'x', 'images': [image]}]})))\n"
            "sys.exit(any(m.split('.')[0] in ('IPython', 'ipykernel', 'PIL') "
            "for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# --- keys ------------------------------------------------------------------------------------

def key_for(base: dict | None = None, **changes) -> str:
    return key_of(request(base, **changes))


@pytest.mark.parametrize("change", [
    {"temperature": 0.8}, {"seed": 43}, {"max_tokens": 201}, {"num_ctx": 8192},
    {"format": {"type": "object"}}, {"think": False}, {"system": "Be verbose."}, {"top_k": 10},
    {"top_p": 0.5}, {"stop": ["\n"]}, {"repeat_penalty": 1.2}, {"options": {"mirostat": 1}},
    {"model": "llama3.2:1b"}, {"api": "openai"},
], ids=repr)
def test_each_keyed_option_changes_the_key(change):
    assert key_for(**change) != key_for()


def test_earlier_turn_image_bytes_and_file_content_change_the_key(tmp_path):
    base = key_for()
    earlier, image = params(), params()
    earlier["messages"][1]["content"] = "A gradient!"
    image["messages"][0]["images"] = [base64.b64encode(OTHER_IMAGE).decode()]
    assert base != key_for(earlier) and base != key_for(image)
    f = tmp_path / "notes.txt"
    f.write_text("one")
    first = key_for(file_path=str(f))
    assert first != base
    f.write_text("two")
    assert key_for(file_path=str(f)) != first
    moved = tmp_path / "elsewhere.txt"  # the content is keyed, not the file's name
    moved.write_text("two")
    assert key_for(file_path=str(moved)) == key_for(file_path=str(f))


def test_identical_inputs_and_harmless_differences_give_the_same_key():
    k = key_for()
    assert k == key_of(request(copy.deepcopy(params()))) and len(k) == len("sha256:") + 64
    a = params(stop="x", temperature=1, format={"a": 1, "b": [1, 2]})
    b = params(model="llama3.2", stop=["x"], temperature=1.0, format={"b": [1, 2], "a": 1},
               keep_alive="10m", seed=42.0)
    b = dict(reversed(list(b.items())))
    b["messages"] = [dict(reversed(list(m.items()))) for m in b["messages"]]
    req_a, req_b = chat_request("chat", a), chat_request("chat", b)
    # the API is keyed, never the host: any Ollama server gives the same kind and spelling
    local, remote = OllamaProvider(base_url="http://localhost:11434"), \
        OllamaProvider(base_url="http://gpu-box:11434")
    req_b.model = remote.canonical_model(req_b.model)
    assert key_of(chat_request_key(local.kind, req_a)) == key_of(chat_request_key(remote.kind, req_b))
    # empty stop lists and images, format="" mean "none"
    plain = ChatRequest(model="m", messages=[{"role": "user", "content": "x"}])
    empty = ChatRequest(model="m", messages=[{"role": "user", "content": "x", "images": []}],
                        stop=[], format="")
    assert key_of(chat_request_key("ollama", plain)) == key_of(chat_request_key("ollama", empty))


def test_ollama_makes_an_implied_latest_tag_explicit():
    ollama = OllamaProvider()
    assert ollama.canonical_model("llama3.2") == "llama3.2:latest"
    assert ollama.canonical_model(" llama3.2:latest ") == "llama3.2:latest"
    assert ollama.canonical_model("llama3.2:1b") == "llama3.2:1b"
    assert ollama.canonical_model("registry.local:5000/team/model") == \
        "registry.local:5000/team/model:latest"  # a registry port is not a tag


def test_images_key_by_decoded_bytes_and_system_as_first_message(tmp_path):
    as_b64 = params()
    as_bytes = params()
    as_bytes["messages"][0]["images"] = [IMAGE]
    as_url = params()
    as_url["messages"][0]["images"] = ["data:image/png;base64," + base64.b64encode(IMAGE).decode()]
    assert key_for(as_b64) == key_for(as_bytes) == key_for(as_url)
    canon = request(as_b64)
    assert canon["messages"][1]["images"] == [hashlib.sha256(IMAGE).hexdigest()]
    inline = params(system=None)
    inline["messages"].insert(0, {"role": "system", "content": "Be brief."})
    assert key_for(inline) == key_for(as_b64)
    # a vision call's image_path goes onto the last user message, as if attached there
    picture = tmp_path / "picture.png"
    picture.write_bytes(IMAGE)
    attached = params()
    attached["messages"][2]["images"] = [base64.b64encode(IMAGE).decode()]
    assert key_for(method="vision", image_path=str(picture)) == key_for(attached) != key_for()


# --- store -----------------------------------------------------------------------------------

def test_put_get_roundtrip_and_wal_mode(tmp_path):
    path = tmp_path / "sub" / "store.sqlite"
    store = ReplayStore(path)
    assert store.get("sha256:x") is None and not path.exists()  # a read creates nothing
    store.put("sha256:x", rec(), status="done", request={"model": "m"})
    got = store.get("sha256:x")
    assert got == Recording(**{**rec().__dict__, "created": got.created})
    assert got.created.endswith("Z") and got.created[:4].isdigit()
    assert store.request("sha256:x") == {"model": "m"}
    copy_ = tmp_path / "committed.sqlite"  # the main file alone (as `git add` sees it, store open)
    copy_.write_bytes(path.read_bytes())
    assert ReplayStore(copy_).get("sha256:x") == got
    store.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize("text,status", [("", "done"), ("  \n", "done"), ("partial", "interrupted"),
                                         ("partial", "stopped"), ("oops", "error")])
def test_refuses_empty_and_unfinished_replies(tmp_path, text, status):
    store = ReplayStore(tmp_path / "s.sqlite")
    with pytest.raises(ValueError):
        store.put("sha256:x", rec(text), status=status)
    with pytest.raises(ValueError):  # one bad entry: nothing of the batch is written
        store.put_many([("sha256:a", rec(), "done"), ("sha256:b", rec(text), status)])
    assert store.count() == 0


def test_count_size_keys_touch_prune(tmp_path):
    store = ReplayStore(tmp_path / "s.sqlite")
    store.put_many([(f"sha256:{i}", rec(f"reply {i} " * 500), "done") for i in range(10)])
    assert store.count() == 10 and store.keys() == sorted(f"sha256:{i}" for i in range(10))
    before = store.size_bytes()
    assert before > 10 * 4000
    time.sleep(0.01)
    store.mark_used("sha256:3")
    with sqlite3.connect(store.path) as raw:
        used = raw.execute("SELECT key FROM recordings WHERE last_used > created").fetchall()
    assert used == [("sha256:3",)]
    assert store.prune(["sha256:1", "sha256:3", "sha256:missing"]) == 8
    assert store.keys() == ["sha256:1", "sha256:3"]
    assert store.size_bytes() < before
    assert store.prune(store.keys()) == 0


def test_replay_reads_leave_the_file_unchanged(tmp_path):
    rp = Replayer("record", tmp_path / "s.sqlite")
    key = rp.key(request())
    rp.save(key, text="Blue.", status="done", model="llama3.2:latest")
    rp.close()
    digest = hashlib.sha256(rp.path.read_bytes()).hexdigest()
    replay = Replayer("replay", rp.path)
    for _ in range(3):
        assert replay.lookup(request()).text == "Blue."
    replay.close()
    assert hashlib.sha256(rp.path.read_bytes()).hexdigest() == digest


def test_not_a_database_is_a_clear_error(tmp_path):
    path = tmp_path / "s.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ReplayStoreError, match="not a replay store"):
        ReplayStore(path).get("sha256:x")


def test_threads_share_one_store(tmp_path):
    store = ReplayStore(tmp_path / "s.sqlite")

    def work(t: int) -> None:
        for i in range(50):
            store.put(f"sha256:{t}-{i}", rec(f"{t}-{i}"), status="done")
            assert store.get(f"sha256:{t}-{i}").text == f"{t}-{i}"

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))  # re-raises a thread's exception
    assert store.count() == 400


def test_lock_contention_is_retried_then_reported_clearly(tmp_path):
    store = ReplayStore(tmp_path / "s.sqlite", busy_timeout=0.05)
    store.put("sha256:a", rec(), status="done")
    blocker = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    blocker.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    threading.Timer(0.3, blocker.execute, args=("COMMIT",)).start()
    store.put("sha256:b", rec(), status="done")  # waits, retries, succeeds
    blocker.execute("BEGIN IMMEDIATE")  # now held for good
    with pytest.raises(ReplayStoreError, match="stayed locked") as info:
        store.put("sha256:c", rec(), status="done")
    assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    assert store.get("sha256:b") is not None  # readers are not blocked by a writer (WAL)
    blocker.execute("ROLLBACK")
    blocker.close()


# --- modes -----------------------------------------------------------------------------------

def test_resolve_defaults_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the environment's relative GLEITZEIT_STORE: from here
    monkeypatch.setattr("gleitzeit_nb.START_DIR", str(tmp_path))  # where the process started
    assert resolve() == ("off", tmp_path / "llm-replay.sqlite")
    assert resolve("Replay", "rec/x.sqlite") == ("replay", tmp_path / "rec" / "x.sqlite")
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb_dir / "report.ipynb"))
    assert resolve("auto") == ("auto", nb_dir / "llm-replay.sqlite")
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/report.ipynb")  # relative: the start dir
    assert resolve()[1] == tmp_path / "llm-replay.sqlite"
    monkeypatch.setenv("GLEITZEIT_REPLAY", "replay")
    monkeypatch.setenv("GLEITZEIT_STORE", "ci/store.sqlite")
    assert resolve("record", "/elsewhere.sqlite") == ("replay", tmp_path / "ci" / "store.sqlite")
    monkeypatch.setenv("GLEITZEIT_REPLAY", "sometimes")
    with pytest.raises(InvalidParamsError, match="GLEITZEIT_REPLAY='sometimes'"):
        resolve()


def test_replay_miss_error_names_prompt_model_store_and_fix(tmp_path):
    rp = Replayer("replay", tmp_path / "s.sqlite")
    long_prompt = "Summarise the quarterly revenue table below in three short bullet points please"
    req = request(messages=[{"role": "user", "content": long_prompt}])
    with pytest.raises(ReplayMissError) as info:
        rp.lookup(req)
    msg = str(info.value)
    assert isinstance(info.value, LLMError) and not rp.path.exists()
    assert "Summarise the quarterly revenue table below in three short" in msg
    assert long_prompt not in msg and "llama3.2:latest" in msg and str(rp.path) in msg
    assert "%config LLMMagics.replay = 'record'" in msg and "GLEITZEIT_REPLAY=record" in msg


def test_modes_off_record_auto_replay(tmp_path):
    path = tmp_path / "s.sqlite"
    usage = {"output_tokens": 3, "finish_reason": "stop", "generation_seconds": 0.25}
    off = Replayer("off", path)
    assert off.lookup(request()) is None and not off.save("sha256:x", text="a", status="done")
    assert off.find(request()) == (key_of(request()), None)
    assert not path.exists()
    rec_ = Replayer("record", path)
    key = rec_.key(request())
    assert key == key_of(request())
    assert rec_.lookup(request(), key=key) is None
    assert not rec_.save(key, text="half", status="interrupted")
    assert not rec_.save(key, text="", status="done")
    assert rec_.save(key, text="Blue.", thinking="t", status="done", model="llama3.2:latest",
                     stats=usage)
    assert rec_.lookup(request()) is None  # record mode never replays
    assert rec_.store.request(key) == request()  # the canonical request is kept with the reply
    hit = Replayer("replay", path).lookup(request())
    assert (hit.text, hit.thinking, hit.stats, hit.model) == ("Blue.", "t", usage,
                                                             "llama3.2:latest")
    with pytest.raises(ReplayMissError):
        Replayer("replay", path).lookup(request(temperature=0.8))
    auto = Replayer("auto", path)
    assert auto.find(request()) == (key, hit) and auto.used == {key}
    changed = request(seed=1)
    key2, miss = auto.find(changed)
    assert miss is None and key2 != key
    assert auto.save(key2, text="Green.", status="done")
    assert auto.store.request(key2) == changed and auto.used == {key, key2}
    assert Replayer("replay", path).lookup(changed).text == "Green."
    assert not Replayer("replay", path).save(key2, text="x", status="done")


def test_save_takes_the_finish_reason_from_the_usage(tmp_path):
    rp = Replayer("record", tmp_path / "s.sqlite")
    key = rp.key(request())
    assert rp.save(key, text="Blue.", status="done", stats={"output_tokens": 3,
                                                           "finish_reason": "length"})
    assert rp.store.get(key).done_reason == "length"


def test_replay_reads_a_store_whose_folder_cannot_be_written(tmp_path):
    """A read-only checkout or mount: WAL's side files cannot be made; replay still reads."""
    folder = tmp_path / "ro"
    folder.mkdir()
    writer = ReplayStore(folder / "store.sqlite")
    writer.put("k1", rec("Recorded."), status="done")
    writer.close()
    folder.chmod(0o555)
    code = ("import os, sys; from gleitzeit_nb.replay import ReplayStore, Recording\n"
            f"s = ReplayStore({str(folder / 'store.sqlite')!r})\n"
            "assert not os.access(os.path.dirname(s.path), os.W_OK), 'folder still writable'\n"
            "print(s.get('k1').text, s.count())\n"
            "try:\n    s.put('k2', Recording(text='x'), status='done')\n"
            "except Exception as exc:\n    print(type(exc).__name__)\n")
    # root ignores permission bits unless it gives up CAP_DAC_OVERRIDE, as setpriv does here
    prefix = (["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
              if os.geteuid() == 0 else [])
    if prefix and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux): permissions cannot apply")
    try:
        out = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True,
                             text=True, timeout=60)
    finally:
        folder.chmod(0o755)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Recorded.", "1", "ReplayStoreError"]
