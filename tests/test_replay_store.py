"""Record/replay: call keys, the store (a folder of JSON files) and the modes.

Durability: test_replay_durability; the files as a reviewer sees them: test_replay_text."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from gleitzeit_nb.core.backend import ChatRequest
from gleitzeit_nb.core.requests import chat_request
from gleitzeit_nb.errors import InvalidParamsError, LLMError
from gleitzeit_nb.providers.ollama import OllamaProvider
from gleitzeit_nb.replay import (Recording, ReplayMissError, Replayer, ReplayStore,
                                 ReplayStoreError, chat_request_key, key_of, resolve)

from .replay_data import IMAGE, OTHER_IMAGE, key, params, rec, request

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

def files(folder) -> dict[str, tuple[bytes, int]]:
    """Every file of a folder: name → (bytes, mtime in ns)."""
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_put_get_roundtrip_one_file_by_key(tmp_path):
    path = tmp_path / "sub" / "llm-replay"
    store = ReplayStore(path)
    assert store.get(key("x")) is None and store.count() == 0
    assert not path.exists()  # a read creates nothing
    store.put(key("x"), rec(), status="done", request={"model": "m"})
    got = store.get(key("x"))
    assert got == Recording(**{**rec().__dict__, "created": got.created})
    assert got.created.endswith("Z") and got.created[:4].isdigit()
    assert store.request(key("x")) == {"model": "m"}
    assert sorted(p.name for p in path.iterdir()) == [".gitignore", key("x")[7:] + ".json"]
    assert store.keys() == [key("x")] and store.count() == 1
    assert store.size_bytes() == (path / (key("x")[7:] + ".json")).stat().st_size


@pytest.mark.parametrize("text,status", [("", "done"), ("  \n", "done"), ("partial", "interrupted"),
                                         ("partial", "stopped"), ("oops", "error")])
def test_refuses_empty_and_unfinished_replies(tmp_path, text, status):
    store = ReplayStore(tmp_path / "s")
    with pytest.raises(ValueError):
        store.put(key("x"), rec(text), status=status)
    with pytest.raises(ValueError):  # one bad entry: nothing of the batch is written
        store.put_many([(key("a"), rec(), "done"), (key("b"), rec(text), status)])
    assert store.count() == 0


@pytest.mark.parametrize("bad", ["sha256:x", "k1", "sha256:" + "A" * 64, "sha256:../" + "a" * 61])
def test_keys_are_sha256_hex_names(tmp_path, bad):
    store = ReplayStore(tmp_path / "s")
    with pytest.raises(ValueError, match="64 hex digits"):
        store.put(bad, rec(), status="done")
    with pytest.raises(ValueError, match="64 hex digits"):
        store.get(bad)
    assert not store.path.exists()


def test_count_size_keys_prune_and_stale_temporary_files(tmp_path):
    store = ReplayStore(tmp_path / "s")
    keys = [key(i) for i in range(10)]
    store.put_many([(k, rec(f"reply {i} " * 500), "done") for i, k in enumerate(keys)])
    assert store.count() == 10 and store.keys() == sorted(keys)
    before = store.size_bytes()
    assert before > 10 * 4000
    stale, fresh = store.path / f".{keys[0][7:]}.dead.tmp", store.path / f".{keys[1][7:]}.busy.tmp"
    for tmp in (stale, fresh):
        tmp.write_text('{"key": "half a rec')  # a writer killed mid-write; one still writing
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert store.count() == 10  # readers ignore temporary files
    assert store.prune([keys[1], keys[3], key("missing")]) == 8
    assert store.keys() == sorted([keys[1], keys[3]]) and store.size_bytes() < before
    assert not stale.exists() and fresh.exists()  # only old temporary files are removed
    assert store.prune(store.keys()) == 0


def test_a_lookup_opens_one_file_by_name_and_never_lists_the_folder(tmp_path, monkeypatch):
    rp = Replayer("record", tmp_path / "s")
    k = rp.key(request())
    rp.save(k, text="Blue.", status="done")
    replay = Replayer("replay", rp.path)

    def listed(*args):
        raise AssertionError("the folder was listed")

    for name in ("scandir", "listdir"):
        monkeypatch.setattr(f"gleitzeit_nb.replay.store.os.{name}", listed)
    assert replay.lookup(request()).text == "Blue." and replay.find(request())[1] is not None
    assert Replayer("auto", rp.path).find(request(seed=1))[1] is None


def test_the_same_answer_re_recorded_leaves_its_file_as_it_was(tmp_path):
    store = ReplayStore(tmp_path / "s")
    store.put(key("x"), rec(), status="done", request={"model": "m"})
    before = files(store.path)
    time.sleep(0.01)
    again = Recording(**{**rec().__dict__, "stats": {**rec().stats, "generation_seconds": 9.9}})
    store.put(key("x"), again, status="done", request={"model": "m"})  # other timings only
    assert files(store.path) == before
    store.put(key("x"), rec("A new answer."), status="done", request={"model": "m"})
    assert files(store.path) != before and store.get(key("x")).text == "A new answer."


def test_replay_reads_leave_the_folder_unchanged(tmp_path):
    rp = Replayer("record", tmp_path / "s")
    k = rp.key(request())
    rp.save(k, text="Blue.", status="done", model="llama3.2:latest")
    rp.close()
    before = files(rp.path)
    replay = Replayer("replay", rp.path)
    for _ in range(3):
        assert replay.lookup(request()).text == "Blue."
    replay.close()
    assert files(rp.path) == before


def test_a_file_in_place_of_the_folder_says_how_to_migrate(tmp_path, caplog):
    path = tmp_path / "llm-replay.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + bytes(100))
    for call in (lambda s: s.get(key("x")), lambda s: s.count(),
                 lambda s: s.put(key("x"), rec(), status="done")):
        with pytest.raises(ReplayStoreError, match="python -m gleitzeit_nb.replay migrate"):
            call(ReplayStore(path))
    # the new default folder is missing, the old file is beside it: the miss says to migrate
    with pytest.raises(ReplayMissError, match="gleitzeit_nb.replay migrate .*llm-replay.sqlite"):
        Replayer("replay", tmp_path / "llm-replay").lookup(request())
    with caplog.at_level("WARNING", logger="gleitzeit_nb.replay.mode"):  # auto would go live
        assert Replayer("auto", tmp_path / "llm-replay").lookup(request()) is None
    assert "gleitzeit_nb.replay migrate" in caplog.text


def test_a_broken_recording_is_a_clear_error_until_recorded_again(tmp_path):
    store = ReplayStore(tmp_path / "s")
    store.put(key("x"), rec(), status="done")
    file = store.path / (key("x")[7:] + ".json")
    file.write_text("{\n<<<<<<< HEAD\n  \"a\": 1\n=======\n  \"a\": 2\n>>>>>>> other\n}\n")
    with pytest.raises(ReplayStoreError, match="merge conflict") as info:
        store.get(key("x"))
    assert str(file) in str(info.value)
    store.put(key("x"), rec("Fixed."), status="done")
    assert store.get(key("x")).text == "Fixed."
    (store.path / (key("y")[7:] + ".json")).write_text(file.read_text())  # renamed by hand
    with pytest.raises(ReplayStoreError, match="no recording of sha256:"):
        store.get(key("y"))
    file.write_text(json.dumps({"key": key("x"), "reply": {"thinking": "t"}}))
    with pytest.raises(ReplayStoreError, match="no reply text"):
        store.get(key("x"))


def test_threads_share_one_store(tmp_path):
    store = ReplayStore(tmp_path / "s")

    def work(t: int) -> None:
        for i in range(50):
            store.put(key(f"{t}-{i}"), rec(f"{t}-{i}"), status="done")
            assert store.get(key(f"{t}-{i}")).text == f"{t}-{i}"

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(work, range(8)))  # re-raises a thread's exception
    assert store.count() == 400
    assert not [p for p in store.path.iterdir() if p.suffix == ".tmp"]


# --- modes -----------------------------------------------------------------------------------

def test_resolve_defaults_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the environment's relative GLEITZEIT_STORE: from here
    monkeypatch.setattr("gleitzeit_nb.START_DIR", str(tmp_path))  # where the process started
    assert resolve() == ("off", tmp_path / "llm-replay")
    assert resolve("Replay", "rec/x") == ("replay", tmp_path / "rec" / "x")
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb_dir / "report.ipynb"))
    assert resolve("auto") == ("auto", nb_dir / "llm-replay")
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/report.ipynb")  # relative: the start dir
    assert resolve()[1] == tmp_path / "llm-replay"
    monkeypatch.setenv("GLEITZEIT_REPLAY", "replay")
    monkeypatch.setenv("GLEITZEIT_STORE", "ci/store")
    assert resolve("record", "/elsewhere") == ("replay", tmp_path / "ci" / "store")
    monkeypatch.setenv("GLEITZEIT_REPLAY", "sometimes")
    with pytest.raises(InvalidParamsError, match="GLEITZEIT_REPLAY='sometimes'"):
        resolve()


def test_replay_miss_error_names_prompt_model_store_and_fix(tmp_path):
    rp = Replayer("replay", tmp_path / "s")
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
    path = tmp_path / "s"
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
    rp = Replayer("record", tmp_path / "s")
    key = rp.key(request())
    assert rp.save(key, text="Blue.", status="done", stats={"output_tokens": 3,
                                                           "finish_reason": "length"})
    assert rp.store.get(key).done_reason == "length"


def test_replay_reads_a_store_whose_folder_cannot_be_written(tmp_path):
    """A read-only checkout or mount: replay reads, recording says where to record instead."""
    checkout = tmp_path / "ro"
    writer = ReplayStore(checkout / "llm-replay")
    writer.put(key(1), rec("Recorded."), status="done")
    paths = [checkout, writer.path, *writer.path.iterdir()]
    for p in reversed(paths):
        p.chmod(0o555 if p.is_dir() else 0o444)
    code = ("import os, sys; from gleitzeit_nb.replay import ReplayStore, Recording\n"
            f"s = ReplayStore({str(writer.path)!r})\n"
            "assert not os.access(s.path, os.W_OK), 'folder still writable'\n"
            f"print(s.get({key(1)!r}).text, s.count(), len(s.keys()))\n"
            "try:\n"
            f"    s.put({key(2)!r}, Recording(text='x'), status='done')\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__, 'GLEITZEIT_STORE' in str(exc))\n")
    # root ignores permission bits unless it gives up CAP_DAC_OVERRIDE, as setpriv does here
    prefix = (["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
              if os.geteuid() == 0 else [])
    if prefix and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv (util-linux): permissions cannot apply")
    try:
        out = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True,
                             text=True, timeout=60)
    finally:
        for p in paths:
            p.chmod(0o755 if p.is_dir() else 0o644)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["Recorded.", "1", "1", "ReplayStoreError", "True"]
    assert sorted(p.name for p in writer.path.iterdir()) == [".gitignore", key(1)[7:] + ".json"]
