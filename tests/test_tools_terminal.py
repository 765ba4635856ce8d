"""Approval in a terminal: a [y/N] prompt on a real pseudo-terminal, the answer deciding."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time

import pytest

from gleitzeit_nb.testing import OllamaSimulator

SCRIPT = '''
import gleitzeit_nb

def get_rows(n: int) -> str:
    """The first rows."""
    return "rows:" + str(n)

r = gleitzeit_nb.chat("Rows?", tools=[get_rows], approve="always", display="terminal",
                      model="llama3.2:latest")
print("STATUS", r.tool_calls[0].status)
'''


def run_on_pty(sim_url: str, answer: bytes) -> str:
    leader, follower = pty.openpty()
    env = {**os.environ, "OLLAMA_HOST": sim_url}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdin=follower, stdout=follower,
                            stderr=follower, env=env, close_fds=True)
    os.close(follower)
    out = b""
    deadline = time.monotonic() + 30
    answered = False
    while time.monotonic() < deadline:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child exited and closed the terminal
            break
        out += chunk
        if not answered and b"[y/N]" in out:
            os.write(leader, answer)
            answered = True
    proc.wait(timeout=10)
    os.close(leader)
    return out.decode("utf-8", "replace")


@pytest.mark.parametrize("answer,status", [(b"y\n", "ok"), (b"\n", "refused")])
def test_terminal_prompt_decides(answer, status):
    with OllamaSimulator() as sim:
        sim.script_tools([{"name": "get_rows", "arguments": {"n": 2}}], then="done: {results}")
        out = run_on_pty(sim.url, answer)
        tool_msgs = [m for r in sim.requests if r.path == "/api/chat"
                     for m in r.body["messages"] if m["role"] == "tool"]
    assert "Run get_rows(n=2)? [y/N]" in out
    assert f"STATUS {status}" in out, out
    expected = "rows:2" if status == "ok" else "Error: the user refused this call"
    assert tool_msgs and tool_msgs[0]["content"].startswith(expected)
