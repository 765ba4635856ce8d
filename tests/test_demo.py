"""The main job: the demo falls back to the simulator when no Ollama answers."""

import os
import subprocess
import sys


def test_demo_uses_simulator_when_no_ollama(dead_url):
    env = {**os.environ, "OLLAMA_HOST": dead_url}
    proc = subprocess.run([sys.executable, "-m", "gleitzeit_nb.demo"], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "bundled Ollama simulator" in out and "no Ollama server answered" in out
    assert "## Chat with llama3.2:latest" in out and "## Vision with llava:latest" in out
    assert "I see a PNG image of 320x200" in out
    assert "2 vectors of 768 dimensions" in out
