"""The store as a reviewer sees it: one readable JSON file per recording, ``git diff`` showing a
re-recorded answer as text, and the conversion of an SQLite store of an older version."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from gleitzeit_nb.replay import Replayer, ReplayStore, key_of
from gleitzeit_nb.replay.migrate import migrate_sqlite

from .replay_data import params, request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("GLEITZEIT_REPLAY", "GLEITZEIT_STORE", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)


def test_a_recording_is_pretty_sorted_utf8_json(tmp_path):
    rp = Replayer("record", tmp_path / "llm-replay")
    messages = params()["messages"]  # the first turn carries an image
    messages[-1]["content"] = "Grüße aus Köln — 東京?"
    canonical = request(messages=messages)
    k = rp.key(canonical)
    usage = {"output_tokens": 7, "finish_reason": "stop", "generation_seconds": 0.5}
    rp.save(k, text="Hallo, Tōkyō! ☀\n\n- one\n- two", thinking="Greeting.", status="done",
            model="llama3.2:latest", stats=usage)
    file = tmp_path / "llm-replay" / f"{k.removeprefix('sha256:')}.json"
    raw = file.read_bytes()
    doc = json.loads(raw)
    assert raw == (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
    assert "Hallo, Tōkyō! ☀".encode() in raw and "Grüße aus Köln — 東京?".encode() in raw
    assert set(doc) == {"key", "reply", "request", "stats", "model", "created", "done_reason"}
    assert doc["key"] == k and doc["request"] == canonical and doc["stats"] == usage
    assert doc["reply"] == {"text": "Hallo, Tōkyō! ☀\n\n- one\n- two", "thinking": "Greeting."}
    assert (doc["model"], doc["done_reason"]) == ("llama3.2:latest", "stop")
    assert key_of(doc["request"]) == k  # the request in the file is the one keyed
    image = doc["request"]["messages"][1]["images"][0]  # messages[0]: the system prompt
    assert len(image) == 64 and len(raw) < 4000  # an image is its hash, never its bytes


def git(repo, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org",
                           "-c", "core.autocrlf=false", *args], cwd=repo, check=True,
                          capture_output=True, text=True).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_diff_shows_a_re_recorded_answer_as_text(tmp_path):
    git(tmp_path, "init", "-q")
    questions = [f"Question {i}?" for i in range(3)]
    rp = Replayer("record", tmp_path / "llm-replay")
    keys = []
    for i, q in enumerate(questions):
        keys.append(rp.key(request(messages=[{"role": "user", "content": q}])))
        rp.save(keys[-1], text=f"Old answer {i}.", status="done", model="m",
                stats={"output_tokens": 3, "generation_seconds": 0.1 * i})
    git(tmp_path, "add", "llm-replay")
    git(tmp_path, "commit", "-q", "-m", "recordings")
    # re-record everything: two answers come out the same (other timings), one differs
    rp = Replayer("record", tmp_path / "llm-replay")
    for i, q in enumerate(questions):
        k = rp.key(request(messages=[{"role": "user", "content": q}]))
        rp.save(k, text="A new answer,\nover two lines." if i == 1 else f"Old answer {i}.",
                status="done", model="m", stats={"output_tokens": 9, "generation_seconds": 1.0})
    assert git(tmp_path, "status", "--porcelain") == \
        f" M llm-replay/{keys[1].removeprefix('sha256:')}.json\n"
    diff = git(tmp_path, "diff")
    assert "Binary" not in diff
    assert '-    "text": "Old answer 1.",' in diff
    assert '+    "text": "A new answer,\\nover two lines.",' in diff
    assert '+    "output_tokens": 9' in diff


# --- migration from the SQLite store --------------------------------------------------------

OLD_SCHEMA = """
CREATE TABLE IF NOT EXISTS recordings (
    key          TEXT PRIMARY KEY NOT NULL,
    text         TEXT NOT NULL CHECK (length(text) > 0),
    thinking     TEXT NOT NULL DEFAULT '',
    stats        TEXT NOT NULL DEFAULT '{}',
    done_reason  TEXT,
    model        TEXT NOT NULL DEFAULT '',
    model_digest TEXT,
    request      TEXT,
    created      TEXT NOT NULL,
    last_used    TEXT
)
"""


def old_store(path, rows, *, keep_open: bool = False) -> sqlite3.Connection | None:
    """An SQLite store as the old ``ReplayStore`` wrote it (WAL mode, schema 1)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(OLD_SCHEMA)
    conn.execute("PRAGMA user_version = 1")
    conn.executemany("INSERT INTO recordings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    if keep_open:  # the rows stay in the -wal file, as with a kernel still running
        return conn
    conn.close()
    return None


def old_row(canonical, text, *, thinking="", stats=None, done_reason=None, digest=None,
            with_request=True):
    return (key_of(canonical), text, thinking, json.dumps(stats or {}, sort_keys=True),
            done_reason, canonical["model"], digest,
            json.dumps(canonical, sort_keys=True, ensure_ascii=False) if with_request else None,
            "2026-01-02T03:04:05.678Z", "2026-01-03T00:00:00.000Z")


def test_migrate_command_converts_an_old_sqlite_store(tmp_path):
    chat = request(messages=[{"role": "user", "content": "Wie geht's? ✓"}])
    think = request(think=True, seed=3)
    embed = {"v": 2, "api": "ollama", "model": "nomic-embed-text:latest", "embed": "ticket 1"}
    usage = {"finish_reason": "stop", "output_tokens": 12, "total_seconds": 0.5}
    old_store(tmp_path / "llm-replay.sqlite", [
        old_row(chat, "Gut, danke! ✓", stats=usage),
        old_row(think, "Blue.", thinking="Sky colour.", done_reason="stop", digest="sha256:abc"),
        old_row(embed, json.dumps([0.25, -1.5]), with_request=False),
        ("not-a-sha-key", "x", "", "{}", None, "m", None, None, "2026-01-01T00:00:00Z", None),
    ])
    out = subprocess.run([sys.executable, "-m", "gleitzeit_nb.replay", "migrate",
                          "llm-replay.sqlite"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "PYTHONPATH": ROOT})
    assert out.returncode == 0, out.stderr
    assert "3 recordings from llm-replay.sqlite written to llm-replay/" in out.stdout
    assert "not-a-sha-key" in out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["llm-replay", "llm-replay.sqlite"]
    rp = Replayer("replay", tmp_path / "llm-replay")  # replays what the old store held
    hit = rp.lookup(chat)
    assert (hit.text, hit.stats, hit.model, hit.created) == (
        "Gut, danke! ✓", usage, "llama3.2:latest", "2026-01-02T03:04:05.678Z")
    hit = rp.lookup(think)
    assert (hit.text, hit.thinking, hit.done_reason, hit.model_digest) == (
        "Blue.", "Sky colour.", "stop", "sha256:abc")
    assert json.loads(rp.lookup(embed).text) == [0.25, -1.5]
    assert rp.store.request(key_of(chat)) == chat and rp.store.request(key_of(embed)) is None
    doc = json.loads((tmp_path / "llm-replay" / f"{key_of(chat)[7:]}.json").read_text("utf-8"))
    assert "last_used" not in doc and "request" in doc


def test_migrate_reads_recordings_still_in_the_wal_and_to_a_named_folder(tmp_path):
    canonical = request()
    conn = old_store(tmp_path / "s.sqlite", [old_row(canonical, "In the WAL.")], keep_open=True)
    try:
        assert (tmp_path / "s.sqlite-wal").stat().st_size > 0
        assert migrate_sqlite(tmp_path / "s.sqlite", tmp_path / "out") == (1, [])
    finally:
        conn.close()
    assert ReplayStore(tmp_path / "out").get(key_of(canonical)).text == "In the WAL."
    before = (tmp_path / "out" / f"{key_of(canonical)[7:]}.json").read_bytes()
    assert migrate_sqlite(tmp_path / "s.sqlite", tmp_path / "out") == (1, [])  # again: no change
    assert (tmp_path / "out" / f"{key_of(canonical)[7:]}.json").read_bytes() == before


def test_migrate_leaves_no_side_files_and_refuses_what_is_not_a_store(tmp_path):
    old_store(tmp_path / "a.sqlite", [old_row(request(), "x")])
    assert migrate_sqlite(tmp_path / "a.sqlite")[0] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "a.sqlite"]
    (tmp_path / "junk.sqlite").write_text("not a database")
    for source, message in (("junk.sqlite", "not an SQLite replay store"),
                            ("missing.sqlite", "is not a file")):
        out = subprocess.run([sys.executable, "-m", "gleitzeit_nb.replay", "migrate", source],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60,
                             env={**os.environ, "PYTHONPATH": ROOT})
        assert out.returncode == 1 and message in out.stderr
    assert not (tmp_path / "junk").exists() and not (tmp_path / "missing").exists()
