"""Record/replay: call keys, the SQLite store, concurrent writers, SIGKILL mid-write, modes."""

from __future__ import annotations

import base64
import copy
import hashlib
import itertools
import multiprocessing as mp
import random
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gleitzeit_nb.errors import InvalidParamsError, LLMError
from gleitzeit_nb.replay import (Recording, ReplayMissError, Replayer, ReplayStore,
                                 ReplayStoreError, call_key, canonical_request, resolve)

IMAGE = bytes(range(256)) * 40
OTHER_IMAGE = IMAGE[:-1] + b"\x00"
SPAWN = mp.get_context("spawn")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("GLEITZEIT_REPLAY", "GLEITZEIT_STORE", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)


def request(**changes):
    """A 3-turn chat with an image in the first turn, plus options; ``changes`` override."""
    req = {
        "provider": "ollama", "model": "llama3.2:latest",
        "messages": [
            {"role": "user", "content": "What is in this picture?",
             "images": [base64.b64encode(IMAGE).decode()]},
            {"role": "assistant", "content": "A gradient."},
            {"role": "user", "content": "Which colours?"},
        ],
        "options": {"temperature": 0.7, "seed": 42, "max_tokens": 200, "num_ctx": 4096,
                    "format": "json", "think": True, "system": "Be brief."},
    }
    options = {**req["options"], **changes.pop("options", {})}
    return {**req, **changes, "options": options}


def rec(text="Blue and green.") -> Recording:
    return Recording(text=text, thinking="hmm", stats={"eval_count": 5, "done_reason": "stop"},
                     done_reason="stop", model="llama3.2:latest")


def test_plain_python_without_ipython():
    code = ("import sys, gleitzeit_nb.replay as r; r.call_key(provider='ollama', model='m', "
            "messages=[{'role': 'user', 'content': 'x', 'images': [b'png']}]); "
            "sys.exit(any(m.split('.')[0] in ('IPython', 'ipykernel', 'PIL') "
            "for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# --- keys ------------------------------------------------------------------------------------

@pytest.mark.parametrize("change", [
    {"options": {"temperature": 0.8}}, {"options": {"seed": 43}}, {"options": {"max_tokens": 201}},
    {"options": {"num_ctx": 8192}}, {"options": {"format": {"type": "object"}}},
    {"options": {"think": False}}, {"options": {"system": "Be verbose."}},
    {"options": {"top_k": 10}}, {"options": {"top_p": 0.5}}, {"options": {"stop": ["\n"]}},
    {"options": {"repeat_penalty": 1.2}}, {"options": {"options": {"mirostat": 1}}},
    {"model": "llama3.2:1b"}, {"provider": "openai"}, {"model_digest": "abc123"},
], ids=repr)
def test_each_keyed_option_changes_the_key(change):
    assert call_key(**request(**change)) != call_key(**request())


def test_earlier_turn_image_bytes_and_file_content_change_the_key(tmp_path):
    base = call_key(**request())
    earlier, image = request(), request()
    earlier["messages"][1]["content"] = "A gradient!"
    image["messages"][0]["images"] = [base64.b64encode(OTHER_IMAGE).decode()]
    assert base != call_key(**earlier) and base != call_key(**image)
    f = tmp_path / "notes.txt"
    f.write_text("one")
    first = call_key(**request(options={"file_path": str(f)}))
    f.write_text("two")
    assert call_key(**request(options={"file_path": str(f)})) != first


def test_identical_inputs_and_harmless_differences_give_the_same_key():
    key = call_key(**request())
    assert key == call_key(**copy.deepcopy(request())) and len(key) == len("sha256:") + 64
    a = request(options={"stop": "x", "temperature": 1, "format": {"a": 1, "b": [1, 2]}})
    b = request(model="llama3.2", provider="ollama@http://gpu-box:11434",
                options={"stop": ["x"], "temperature": 1.0, "format": {"b": [1, 2], "a": 1},
                         "keep_alive": "10m", "seed": 42.0})
    b["options"] = dict(reversed(list(b["options"].items())))
    b["messages"] = [dict(reversed(list(m.items()))) for m in b["messages"]]
    assert call_key(**a) == call_key(**b)


def test_images_key_by_decoded_bytes_and_system_as_first_message():
    as_b64 = request()
    as_bytes = request()
    as_bytes["messages"][0]["images"] = [IMAGE]
    as_url = request()
    as_url["messages"][0]["images"] = ["data:image/png;base64," + base64.b64encode(IMAGE).decode()]
    assert call_key(**as_b64) == call_key(**as_bytes) == call_key(**as_url)
    canon = canonical_request(**as_b64)
    assert canon["messages"][1]["images"] == [hashlib.sha256(IMAGE).hexdigest()]
    inline = request(options={"system": None})
    inline["messages"].insert(0, {"role": "system", "content": "Be brief."})
    assert call_key(**inline) == call_key(**as_b64)


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
    key = rp.key(**request())
    rp.save(key, text="Blue.", status="done", model="llama3.2:latest")
    rp.close()
    digest = hashlib.sha256(rp.path.read_bytes()).hexdigest()
    replay = Replayer("replay", rp.path)
    for _ in range(3):
        assert replay.lookup(**request()).text == "Blue."
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


# --- concurrent processes --------------------------------------------------------------------

def _worker_request(worker: int, i: int) -> dict:
    return request(messages=[{"role": "user", "content": f"worker {worker} question {i}"}])


def _writer(path: str, worker: int, n: int, barrier, errors) -> None:
    try:
        rp = Replayer("auto", path)
        barrier.wait(timeout=60)
        for i in range(n):
            req = _worker_request(worker, i)
            key = rp.key(**req)
            if rp.lookup(**req, key=key) is not None:
                raise AssertionError("unexpected hit")
            rp.save(key, text=f"answer {worker}/{i}", status="done", model="llama3.2:latest",
                    stats={"eval_count": i, "done_reason": "stop"})
        rp.close()
    except BaseException as exc:
        errors.put(f"worker {worker}: {exc!r}")
        raise


def test_four_processes_write_800_records_concurrently(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    barrier, errors = SPAWN.Barrier(4), SPAWN.Queue()
    procs = [SPAWN.Process(target=_writer, args=(path, w, 200, barrier, errors)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    seen = [errors.get() for _ in range(errors.qsize())]
    assert seen == [] and [p.exitcode for p in procs] == [0, 0, 0, 0]
    replay = Replayer("replay", path)
    assert replay.store.count() == 800
    for w in range(4):
        for i in range(200):
            hit = replay.lookup(**_worker_request(w, i))
            assert (hit.text, hit.stats["eval_count"]) == (f"answer {w}/{i}", i)


# --- SIGKILL mid-write -----------------------------------------------------------------------

BATCH = 300


def _kill_key(tag: str, batch: int, i: int) -> str:
    return f"sha256:{tag}-{batch:04d}-{i:04d}"


def _kill_text(key: str) -> str:
    return (key + " ") * 800  # ~20 kB: a batch is ~6 MB, more than the page cache, so it spills


def _looping_writer(path: str, report: str, tag: str, hang_at: int) -> None:
    """Write batches of BATCH records, a transaction each; report "COMMIT <n>" after each
    commit (its keys are ``_kill_key(tag, n, 0..BATCH-1)``). At batch ``hang_at``, stop half-way
    through the transaction and report "MID", so the parent kills it at a known point."""
    store = ReplayStore(path)
    with open(report, "a", encoding="utf-8") as out:
        for batch in itertools.count():
            if batch == hang_at:
                with store._lock:
                    conn = store._connection(create=True)
                start = conn.total_changes

                def hang() -> int:
                    if conn.total_changes - start >= BATCH // 2:
                        out.write("MID\n")
                        out.flush()
                        time.sleep(3600)
                    return 0

                conn.set_progress_handler(hang, 1000)
            keys = [_kill_key(tag, batch, i) for i in range(BATCH)]
            store.put_many([(k, rec(_kill_text(k)), "done") for k in keys])
            out.write(f"COMMIT {batch}\n")
            out.flush()


def _reported(report: Path) -> tuple[int, bool]:
    """How many batches were reported committed, and whether MID was seen."""
    lines = report.read_text(encoding="utf-8").split("\n") if report.exists() else []
    return sum(line.startswith("COMMIT ") for line in lines), "MID" in lines


def _kill_child(path: Path, report: Path, tag: str, hang_at: int, delay: float) -> None:
    proc = SPAWN.Process(target=_looping_writer, args=(str(path), str(report), tag, hang_at))
    proc.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        batches, mid = _reported(report)
        if mid or (hang_at < 0 and batches >= 2):
            break
        time.sleep(0.01)
    else:
        proc.kill()
        pytest.fail("the writer made no progress")
    time.sleep(delay)
    proc.kill()  # SIGKILL
    proc.join(10)
    assert proc.exitcode == -9


def _check_after_kill(path: Path, report: Path, tag: str) -> None:
    batches, _ = _reported(report)
    committed = {_kill_key(tag, b, i) for b in range(batches) for i in range(BATCH)}
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store = ReplayStore(path)
    stored = {k for k in store.keys() if k.startswith(f"sha256:{tag}-")}
    assert committed <= stored
    # killed between COMMIT and its report: that whole batch may be there too, never a part
    assert stored - committed in (set(), {_kill_key(tag, batches, i) for i in range(BATCH)})
    for key in stored:
        got = store.get(key)
        assert (got.text, got.thinking, got.stats) == (_kill_text(key), "hmm", rec().stats)
    store.put("sha256:after", rec(), status="done")  # still writable
    store.close()


def _uncommitted_wal_frames(path: Path) -> int:
    """Frames of the current WAL generation after its last commit frame (WAL file format)."""
    data = path.with_name(path.name + "-wal").read_bytes()
    page, salt = int.from_bytes(data[8:12], "big"), data[16:24]
    size = 24 + page
    current = [i for i in range((len(data) - 32) // size)
               if data[32 + i * size + 8:32 + i * size + 16] == salt]
    commits = [i for i in current if data[32 + i * size + 4:32 + i * size + 8] != bytes(4)]
    return len([i for i in current if i > max(commits, default=-1)])


def test_sigkill_mid_transaction_leaves_only_whole_commits(tmp_path):
    path, report = tmp_path / "k.sqlite", tmp_path / "report.txt"
    _kill_child(path, report, "mid", hang_at=3, delay=0.0)
    assert _reported(report) == (3, True)
    assert _uncommitted_wal_frames(path) > 0  # the killed transaction had spilled into the WAL
    _check_after_kill(path, report, "mid")
    assert ReplayStore(path).count() == 3 * BATCH + 1


def test_sigkill_at_random_moments(tmp_path):
    path = tmp_path / "k.sqlite"
    rng = random.Random(6)
    for round_ in range(3):
        report = tmp_path / f"report{round_}.txt"
        _kill_child(path, report, f"r{round_}", hang_at=-1, delay=rng.uniform(0, 0.3))
        _check_after_kill(path, report, f"r{round_}")


# --- modes -----------------------------------------------------------------------------------

def test_resolve_defaults_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve() == ("off", tmp_path / "llm-replay.sqlite")
    assert resolve("Replay", "rec/x.sqlite") == ("replay", tmp_path / "rec" / "x.sqlite")
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    monkeypatch.setenv("JPY_SESSION_NAME", str(nb_dir / "report.ipynb"))
    assert resolve("auto") == ("auto", nb_dir / "llm-replay.sqlite")
    monkeypatch.setenv("JPY_SESSION_NAME", "notebooks/report.ipynb")  # relative: use the cwd
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
        rp.lookup(**req)
    msg = str(info.value)
    assert isinstance(info.value, LLMError) and not rp.path.exists()
    assert "Summarise the quarterly revenue table below in three short" in msg
    assert long_prompt not in msg and "llama3.2:latest" in msg and str(rp.path) in msg
    assert "%config LLMMagics.replay = 'record'" in msg and "GLEITZEIT_REPLAY=record" in msg


def test_modes_off_record_auto_replay(tmp_path):
    path = tmp_path / "s.sqlite"
    off = Replayer("off", path)
    assert off.lookup(**request()) is None and not off.save("sha256:x", text="a", status="done")
    assert not path.exists()
    rec_ = Replayer("record", path)
    key = rec_.key(**request())
    assert rec_.lookup(**request(), key=key) is None
    assert not rec_.save(key, text="half", status="interrupted")
    assert not rec_.save(key, text="", status="done")
    assert rec_.save(key, text="Blue.", thinking="t", status="done", model="llama3.2:latest",
                     stats={"done_reason": "stop"})
    assert rec_.lookup(**request()) is None  # record mode never replays
    assert rec_.store.request(key)["options"]["temperature"] == 0.7
    hit = Replayer("replay", path).lookup(**request())
    assert (hit.text, hit.thinking, hit.done_reason) == ("Blue.", "t", "stop")
    with pytest.raises(ReplayMissError):
        Replayer("replay", path).lookup(**request(options={"temperature": 0.8}))
    auto = Replayer("auto", path)
    assert auto.lookup(**request()).text == "Blue." and auto.used == {key}
    changed = request(options={"seed": 1})
    key2 = auto.key(**changed)
    assert auto.lookup(**changed, key=key2) is None
    assert auto.save(key2, text="Green.", status="done")
    assert Replayer("replay", path).lookup(**changed).text == "Green."
    assert not Replayer("replay", path).save(key2, text="x", status="done")
