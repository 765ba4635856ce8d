"""The replay store (a folder of JSON files) under concurrent writer processes and SIGKILL."""

from __future__ import annotations

import itertools
import json
import multiprocessing as mp
import os
import random
import time
from pathlib import Path

import pytest

from gleitzeit_nb.replay import Replayer, ReplayStore

from .replay_data import key, rec, request

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
    path = str(tmp_path / "shared")
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
    assert_whole(Path(path))
    assert not [p for p in Path(path).iterdir() if p.suffix == ".tmp"]


def assert_whole(folder: Path) -> None:
    """Every recording's file is complete, valid JSON, under its own key's name."""
    for file in folder.glob("*.json"):
        doc = json.loads(file.read_text(encoding="utf-8"))
        assert doc["key"] == "sha256:" + file.stem and doc["reply"]["text"], file.name


# --- SIGKILL mid-write -----------------------------------------------------------------------

BATCH = 300


def _kill_key(tag: str, batch: int, i: int) -> str:
    return key(f"{tag}-{batch:04d}-{i:04d}")


def _kill_text(k: str) -> str:
    return (k + " ") * 300  # ~22 kB: a batch is ~6 MB


def _looping_writer(path: str, report: str, tag: str, hang_at: int) -> None:
    """Write batches of BATCH records (``put_many``); report "COMMIT <n>" after each batch (its
    keys are ``_kill_key(tag, n, 0..BATCH-1)``). At batch ``hang_at``, stop half-way through the
    batch, with half the bytes of a recording in its temporary file, and report "MID", so the
    parent kills it at a known point."""
    import gleitzeit_nb.replay.store as store_module

    store = ReplayStore(path)
    real_fsync, synced = os.fsync, [0]

    def hang_half_way(fd: int) -> None:
        synced[0] += 1
        if synced[0] == BATCH // 2:
            os.ftruncate(fd, os.fstat(fd).st_size // 2)  # as if killed while writing the bytes
            out.write("MID\n")
            out.flush()
            time.sleep(3600)
        real_fsync(fd)

    with open(report, "a", encoding="utf-8") as out:
        for batch in itertools.count():
            if batch == hang_at:
                store_module.os.fsync = hang_half_way  # type: ignore[attr-defined]
            keys = [_kill_key(tag, batch, i) for i in range(BATCH)]
            store.put_many([(k, rec(_kill_text(k)), "done") for k in keys])
            out.write(f"COMMIT {batch}\n")
            out.flush()


def _reported(report: Path) -> tuple[int, bool]:
    """How many batches were reported written, and whether MID was seen."""
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


def _check_after_kill(path: Path, report: Path, tag: str, before: set[str]) -> set[str]:
    """Every reported batch is there; of the killed batch, only whole recordings (some, all or
    none of them); every file is a whole recording. ``before``: the keys stored before this
    writer started. Returns the killed batch's keys that were stored."""
    batches, _ = _reported(report)
    committed = {_kill_key(tag, b, i) for b in range(batches) for i in range(BATCH)}
    store = ReplayStore(path)
    stored = set(store.keys())
    assert committed <= stored
    partial = stored - committed - before
    assert partial <= {_kill_key(tag, batches, i) for i in range(BATCH)}
    assert_whole(path)
    for k in committed | partial:
        got = store.get(k)
        assert (got.text, got.thinking, got.stats) == (_kill_text(k), "hmm", rec().stats)
    store.put(key(f"after-{tag}"), rec(), status="done")  # still writable
    return partial


def test_sigkill_mid_write_leaves_only_whole_recordings(tmp_path):
    path, report = tmp_path / "k", tmp_path / "report.txt"
    _kill_child(path, report, "mid", hang_at=3, delay=0.0)
    assert _reported(report) == (3, True)
    tmp = [p for p in path.iterdir() if p.suffix == ".tmp"]
    assert len(tmp) == 1 and 0 < tmp[0].stat().st_size < len(_kill_text(key(0)))  # half written
    partial = _check_after_kill(path, report, "mid", set())
    assert len(partial) == BATCH // 2 - 1  # those before the one being written
    assert ReplayStore(path).count() == 3 * BATCH + len(partial) + 1


def test_sigkill_at_random_moments(tmp_path):
    path = tmp_path / "k"
    rng = random.Random(6)
    for round_ in range(3):
        report = tmp_path / f"report{round_}.txt"
        before = set(ReplayStore(path).keys())
        _kill_child(path, report, f"r{round_}", hang_at=-1, delay=rng.uniform(0, 0.3))
        _check_after_kill(path, report, f"r{round_}", before)
