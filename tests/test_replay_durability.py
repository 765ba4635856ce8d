"""The replay store under concurrent writer processes and under SIGKILL mid-write."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import random
import sqlite3
import time
from pathlib import Path

import pytest

from gleitzeit_nb.replay import Replayer, ReplayStore

from .replay_data import rec, request

SPAWN = mp.get_context("spawn")


# --- concurrent processes --------------------------------------------------------------------

def _worker_request(worker: int, i: int) -> dict:
    return request(messages=[{"role": "user", "content": f"worker {worker} question {i}"}])


def _writer(path: str, worker: int, n: int, barrier, errors) -> None:
    try:
        rp = Replayer("auto", path)
        barrier.wait(timeout=60)
        for i in range(n):
            req = _worker_request(worker, i)
            key, hit = rp.find(req)
            if hit is not None:
                raise AssertionError("unexpected hit")
            rp.save(key, text=f"answer {worker}/{i}", status="done", model="llama3.2:latest",
                    stats={"output_tokens": i, "finish_reason": "stop"})
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
            hit = replay.lookup(_worker_request(w, i))
            assert (hit.text, hit.stats["output_tokens"]) == (f"answer {w}/{i}", i)


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
