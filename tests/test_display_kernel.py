"""ReplyDisplay in a real ipykernel: what reaches iopub in live and final mode, and auto mode."""

from __future__ import annotations

import json
import sys

import pytest

from gleitzeit_nb.notebook.display import ReplyDisplay, resolve_mode

from .kernel import Kernel

# Cleared so the host environment (a Jupyter terminal, VS Code) cannot change "auto" here.
CLEAN = {"JPY_SESSION_NAME": "", "GLEITZEIT_DISPLAY": "", "VSCODE_PID": "", "VSCODE_CWD": ""}
XSS = "<img src=x onerror=alert(1)>"

STREAM = """
import time
from gleitzeit_nb.notebook.display import ReplyDisplay
d = ReplyDisplay(model="llama3.2:latest", mode={mode!r})
d.start()
time.sleep({wait})
words = [f"w{{i}} " for i in range(300)]
words[100], words[150] = "<script>alert(1)</script> ", {xss!r} + " "
t0 = time.monotonic()
for w in words:
    d.add(w)
    time.sleep(0.002)
duration = time.monotonic() - t0
d.finish(stats={{"output_tokens": 300, "generation_seconds": 3.0, "input_tokens": 9}})
print(json.dumps({{"duration": duration, "sent": d.updates_sent, "bytes": d.bytes_sent}}))
"""


@pytest.fixture(scope="module")
def kernel():
    k = Kernel(CLEAN)
    k.run("import json, os")
    yield k
    k.shutdown()


@pytest.fixture(scope="module")
def jupyter_kernel():
    """A kernel as a Jupyter server starts it (JPY_SESSION_NAME), with GLEITZEIT_DISPLAY=final."""
    k = Kernel({**CLEAN, "JPY_SESSION_NAME": "work/report.ipynb", "GLEITZEIT_DISPLAY": "final"})
    k.run("import json, os")
    yield k
    k.shutdown()


def stream(kernel, mode: str, wait: float = 0.0):
    ex = kernel.run(STREAM.format(mode=mode, wait=wait, xss=XSS), timeout=60)
    assert ex.status == "ok", ex.error
    return ex, json.loads(ex.stdout)


def test_live_streams_into_one_display_throttled(kernel):
    ex, info = stream(kernel, "live")
    msgs = ex.of_type("display_data", "update_display_data")
    first, updates = msgs[0], msgs[1:]
    assert first["msg_type"] == "display_data" and "waiting for llama3.2:latest" in first["content"]["data"]["text/plain"]
    display_id = first["content"]["transient"]["display_id"]
    assert updates and all(m["msg_type"] == "update_display_data" for m in updates)
    assert {m["content"]["transient"]["display_id"] for m in updates} == {display_id}
    assert len(updates) <= info["duration"] * 12 + 2  # ~10/s, not one per token
    assert len(updates) >= 3  # but it does stream
    assert info["sent"] == len(msgs)
    assert info["bytes"] == sum(len(v.encode()) for m in msgs for v in m["content"]["data"].values())
    assert not ex.of_type("clear_output")
    final = ex.final_outputs()[display_id]
    text = "".join(f"w{i} " for i in range(300)).replace("w100 ", "<script>alert(1)</script> ")
    text = text.replace("w150 ", XSS + " ")
    assert final["text/plain"].startswith(text)  # the real text, not a repr
    md = final["text/markdown"]
    assert "&lt;script>alert(1)&lt;/script>" in md and "<script" not in md
    assert "&lt;img src=x onerror=alert(1)>" in md and "<img" not in md
    assert md.endswith("<sub>llama3.2:latest · 300 tokens · 100.0 tok/s · prompt 9 tokens</sub>")


def test_live_first_token_replaces_the_waiting_line_at_once(kernel):
    ex = kernel.run("d = ReplyDisplay(model='m', mode='live'); d.start(); d.add('Hello'); d.finish()")
    kinds = [m["msg_type"] for m in ex.of_type("display_data", "update_display_data")]
    assert kinds == ["display_data", "update_display_data", "update_display_data"]
    first_update = ex.of_type("update_display_data")[0]["content"]["data"]
    assert first_update["text/plain"] == "Hello"  # the first delta shows without waiting


def test_live_waiting_line_counts_seconds_at_most_once_a_second(kernel):
    ex = kernel.run("import time\nd = ReplyDisplay(model='m', mode='live'); d.start()\n"
                    "t0 = time.monotonic()\nwhile time.monotonic() - t0 < 2.3:\n    d.tick(); time.sleep(0.01)\n"
                    "d.add('ok'); d.finish(status='interrupted')")
    updates = ex.of_type("update_display_data")
    waiting = [m["content"]["data"]["text/plain"] for m in updates if "waiting" in m["content"]["data"]["text/plain"]]
    assert waiting == ["⏳ waiting for m… (1 s)", "⏳ waiting for m… (2 s)"]
    assert "interrupted" in ex.final_outputs()[updates[-1]["content"]["transient"]["display_id"]]["text/markdown"]


def test_tick_flushes_text_held_back_by_the_throttle(kernel):
    ex = kernel.run("import time\nd = ReplyDisplay(model='m', mode='live', min_interval=0.3); d.start()\n"
                    "d.add('one '); d.add('two')\ntime.sleep(0.35); d.tick()\nprint(d.updates_sent)")
    assert ex.stdout.strip() == "3"  # waiting line, "one ", then "one two" via tick
    assert ex.of_type("update_display_data")[-1]["content"]["data"]["text/plain"] == "one two"


def test_final_mode_sends_exactly_one_display(kernel):
    ex, info = stream(kernel, "final")
    assert len(ex.of_type("display_data")) == 1 and not ex.of_type("update_display_data")
    (data,) = [m["content"]["data"] for m in ex.of_type("display_data")]
    assert data["text/plain"].startswith("w0 w1 ") and "300 tokens" in data["text/markdown"]
    assert "<script" not in data["text/markdown"] and info["sent"] == 1


def test_final_mode_error_without_text_shows_nothing(kernel):
    ex = kernel.run("d = ReplyDisplay(model='m', mode='final'); d.start(); d.finish(status='error', note='down')")
    assert not ex.of_type("display_data", "update_display_data")


def test_auto_is_final_in_a_headless_kernel_and_live_under_a_jupyter_server(kernel):
    assert kernel.run("from gleitzeit_nb.notebook.display import resolve_mode\nprint(resolve_mode())").stdout.strip() \
        == "final"
    code = ("os.environ['JPY_SESSION_NAME'] = 'x.ipynb'\nprint(resolve_mode(), resolve_mode('terminal'))\n"
            "del os.environ['JPY_SESSION_NAME']\nget_ipython().user_ns['__vsc_ipynb_file__'] = '/x.ipynb'\n"
            "print(resolve_mode())\ndel get_ipython().user_ns['__vsc_ipynb_file__']\nprint(resolve_mode())")
    assert kernel.run(code).stdout.split() == ["live", "terminal", "live", "final"]


def test_gleitzeit_display_wins_over_the_session(jupyter_kernel):
    ex = jupyter_kernel.run("from gleitzeit_nb.notebook.display import resolve_mode, ReplyDisplay\n"
                            "print(resolve_mode())\nd = ReplyDisplay(model='m'); d.start(); d.add('a'); d.add('b')\n"
                            "d.finish()\ndel os.environ['GLEITZEIT_DISPLAY']\nprint(resolve_mode())")
    assert ex.stdout.split() == ["final", "live"]  # live once the override is gone
    assert len(ex.of_type("display_data")) == 1 and not ex.of_type("update_display_data")


# --- without a kernel -----------------------------------------------------------------------------
def test_auto_without_a_kernel_is_terminal(monkeypatch):
    for name in CLEAN:
        monkeypatch.delenv(name, raising=False)
    assert resolve_mode() == resolve_mode(None) == "terminal"
    monkeypatch.setenv("GLEITZEIT_DISPLAY", "live")
    assert resolve_mode("auto") == "live" and resolve_mode("final") == "final"
    monkeypatch.setenv("GLEITZEIT_DISPLAY", "loud")
    with pytest.raises(ValueError, match="GLEITZEIT_DISPLAY='loud'.*auto, live, final, terminal"):
        resolve_mode()
    with pytest.raises(ValueError, match="'fancy'.*auto, live, final, terminal"):
        ReplyDisplay(model="m", mode="fancy")


def test_terminal_writes_deltas_then_the_footer(capsys):
    d = ReplyDisplay(model="m", mode="terminal")
    d.start()
    assert capsys.readouterr().out == ""
    d.add("Hel", "pondering")  # thinking is left out when stdout is not a terminal
    assert capsys.readouterr().out == "Hel"
    d.add("lo")
    assert capsys.readouterr().out == "lo"
    d.finish(stats={"output_tokens": 2, "generation_seconds": 0.1, "finish_reason": "length"})
    assert capsys.readouterr().out == "\n[m · 2 tokens · 20.0 tok/s · stopped: length limit (max_tokens or the context size)]\n"
    assert d.text == "Hello" and d.thinking == "pondering" and d.updates_sent == 0


def test_terminal_dims_thinking_on_a_tty(monkeypatch, capsys):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    d = ReplyDisplay(model="m", mode="terminal", show_stats=False)
    d.start()
    d.add("", "hmm")
    d.add("Yes.\n")
    d.finish(status="interrupted")
    assert capsys.readouterr().out == "\x1b[2mhmm\x1b[0m\n\nYes.\n\x1b[2m[interrupted]\x1b[0m\n"
