"""The terminal demo: real answers from the built-in engine when no server answers; the
simulator only when asked."""

import os
import re
import subprocess
import sys

from .conftest import require_llama


def demo(*args: str, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "gleitzeit_nb.demo", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_demo_uses_the_local_engine_when_no_server_answers(dead_url):
    require_llama()
    out = demo(env={"OLLAMA_HOST": dead_url})
    assert "starting the built-in llama.cpp engine" in out and "Engine ready at" in out
    chat = re.search(r"## Chat with smollm2\n(.+?)\n  \[(\d+) tokens", out, re.S)
    assert chat and len(chat.group(1).split()) >= 5 and int(chat.group(2)) > 0  # real text
    assert "You said" not in out  # the simulator's stand-in text
    assert "No vision" in out and "2 vectors of 576 dimensions" in out


def test_demo_uses_the_simulator_only_when_asked(dead_url):
    out = demo("--simulator", env={"OLLAMA_HOST": dead_url})
    assert "bundled simulator" in out and "stand-in text" in out
    assert "## Chat with llama3.2:latest" in out and "## Vision with llava:latest" in out
    assert "I see a PNG image of 320x200" in out
    assert "2 vectors of 768 dimensions" in out
