"""ChatPanel with tools against the simulator over loopback, on both APIs: the call block and
the answer in the panel's output, Stop during a slow tool and during the answer round, the
transcript of a tool conversation made elsewhere; in a real kernel ``%llm_chat --tools
--approve always`` with its buttons clicked as a front-end clicks them (approving, refusing,
Stop while it waits)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from gleitzeit_nb.app.connections import CONNECTIONS
from gleitzeit_nb.app.requests import ask_async, make_request
from gleitzeit_nb.errors import InvalidParamsError
from gleitzeit_nb.widgets import ChatPanel

from .kernel import start_kernel
from .test_approval_kernel import Frontend

SHARED_SIM = True  # (the kernel test's kernel points at the module's simulator)
EVIL = '<img src=x onerror="alert(1)"> $x$'


def lookup(key: str) -> str:
    """Look a key up in the notebook's table.

    Args:
        key: The key.
    """
    lookup.calls.append(key)  # type: ignore[attr-defined]
    return f"value of {key}: 42 {EVIL}"


lookup.calls = []  # type: ignore[attr-defined]


@pytest.fixture(params=["ollama", "openai"])
def host(request, sim) -> str:
    lookup.calls.clear()
    return sim.url + ("/v1" if request.param == "openai" else "")


def chats(sim) -> list[dict[str, Any]]:
    return [r.body for r in sim.requests if r.path in ("/api/chat", "/v1/chat/completions")]


def answer_md(panel: ChatPanel) -> str:
    """The Markdown of the panel's last answer."""
    return panel.transcript.children[-1].children[1].outputs[0]["data"]["text/markdown"]


async def wait_for(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)
    return value


async def test_call_block_and_answer_in_the_panel(sim, host):
    sim.script_tools([{"name": "lookup", "arguments": {"key": "<script>k</script>"}}],
                     text="Let me check.", then="Answer: {results}")
    panel = ChatPanel(model="llama3.2", host=host, tools=[lookup])
    reply = await panel.send("What is k?")
    assert panel.error is None
    assert lookup.calls == ["<script>k</script>"]
    md = answer_md(panel)
    head = "<details><summary><code>🔧 lookup(key=&quot;&lt;script&gt;k&lt;/script&gt;&quot;)"
    assert head in md
    assert "✓" in md and md.index("Let me check.") < md.index("<details>") < md.index("Answer:")
    assert "<script" not in md and "<img" not in md and "&lt;img" in md  # escaped, not live
    assert reply.startswith("Answer: Based on lookup: value of <script>k</script>: 42")
    assert [r.name for r in reply.tool_calls] == ["lookup"] and reply.tool_calls[0].status == "ok"
    assert "1 tool call" in panel.status.value
    first, second = chats(sim)
    assert [t["function"]["name"] for t in first["tools"]] == ["lookup"]
    assert second["messages"][-1]["role"] == "tool"
    assert second["messages"][-1]["content"] == f"value of <script>k</script>: 42 {EVIL}"
    # the conversation's turns; the steps are on the Reply
    assert panel.messages == [{"role": "user", "content": "What is k?"},
                              {"role": "assistant", "content": str(reply)}]
    assert len(CONNECTIONS.sessions.get(panel.session).messages) == 4  # + call, result


async def test_stop_during_a_slow_tool_ends_the_loop(sim, host):
    state = {"started": 0, "finished": 0}

    async def slow_lookup(key: str) -> str:
        """Look a key up, slowly."""
        state["started"] += 1
        await asyncio.sleep(5)
        state["finished"] += 1
        return "late"

    sim.script_tools([{"name": "slow_lookup", "arguments": {"key": "k"}}], text="Checking.")
    panel = ChatPanel(model="llama3.2", host=host, tools=[slow_lookup])
    task = panel.send("What is k?")
    await wait_for(lambda: state["started"])
    await wait_for(lambda: "slow_lookup running" in panel.status.value)
    stopped_at = time.monotonic()
    panel.stop()
    assert await task is None and time.monotonic() - stopped_at < 1.0
    await asyncio.sleep(0.3)
    assert state == {"started": 1, "finished": 0}  # the tool did not run on
    assert len(chats(sim)) == 1  # no further request
    md = answer_md(panel)
    assert "⏹ interrupted" in md and "stopped" in md and "Checking." in md
    assert "stopped after" in panel.status.value and not panel.running
    history = CONNECTIONS.sessions.get(panel.session).messages
    assert [m["role"] for m in history] == ["user", "assistant", "tool", "assistant"]
    assert history[1]["tool_calls"][0]["name"] == "slow_lookup"
    assert history[2]["content"] == ("Error: interrupted by the user while running; it may "
                                     "have had effects.")
    assert history[3]["interrupted"] is True
    # the kept history is a valid conversation: the next request carries the call's result
    sim.clear_tool_scripts()
    assert await panel.send("Never mind.") is not None, panel.error
    sent = chats(sim)[-1]["messages"]
    assert [m["role"] for m in sent][-5:] == ["user", "assistant", "tool", "assistant", "user"]


async def test_without_a_kernel_always_is_a_refusal_the_model_reads(sim, host):
    sim.script_tools([{"name": "lookup", "arguments": {"key": "k"}}])
    panel = ChatPanel(model="llama3.2", host=host, tools=[lookup], approve="always")
    reply = await panel.send("What is k?")
    (run,) = reply.tool_calls
    assert run.status == "refused" and "nobody can approve it here" in run.error
    assert lookup.calls == [] and "✗ refused" in answer_md(panel)
    assert chats(sim)[1]["messages"][-1]["content"].startswith("Error: the user refused")


async def test_stop_during_the_answer_round(sim, host):
    sim.token_delay = 0.03
    sim.script_tools([{"name": "lookup", "arguments": {"key": "k"}}],
                     then="The answer, word by word: " + "word " * 200)
    panel = ChatPanel(model="llama3.2", host=host, tools=[lookup])
    task = panel.send("What is k?")
    await wait_for(lambda: "word word" in (panel._stream.text if panel._stream else ""))
    panel.stop()
    assert await task is None
    assert sim.wait_for_disconnects(1, timeout=1.0), "the server kept generating"
    assert lookup.calls == ["k"] and len(chats(sim)) == 2
    kept = CONNECTIONS.sessions.get(panel.session).messages[-1]
    assert kept["interrupted"] and kept["content"].startswith("The answer, word by word")
    assert len(kept["content"].split()) < 200
    md = answer_md(panel)
    assert "<details>" in md and "stopped" in md


async def test_tool_conversations_from_elsewhere_show_in_the_transcript(sim, host):
    session = f"shared-{host.endswith('/v1')}"
    CONNECTIONS.sessions.reset(session)
    for key in ("k", "j"):  # two turns: their call ids repeat (call_1_1)
        sim.script_tools([{"name": "lookup", "arguments": {"key": key}}], then="Answer: {results}")
        await ask_async(make_request(f"What is {key}?", model="llama3.2", host=host,
                                     session=session, tools=[lookup]))
    panel = ChatPanel(model="llama3.2", host=host, session=session)
    assert len(panel.transcript.children) == 4  # question, answer, question, answer
    for turn, key in ((1, "k"), (3, "j")):
        md = panel.transcript.children[turn].children[1].outputs[0]["data"]["text/markdown"]
        assert f"<details><summary><code>🔧 lookup(key=&quot;{key}&quot;)</code> ✓" in md
        assert f"<pre>value of {key}: 42" in md  # each call with its own turn's result
        assert md.index("<details>") < md.index("Answer:") and "<img" not in md
    assert [m["role"] for m in panel.messages] == ["user", "assistant"] * 2


def test_bad_tool_options_fail_when_the_panel_is_made():
    with pytest.raises(InvalidParamsError, match="approve='sometimes'"):
        ChatPanel(tools=[lookup], approve="sometimes")
    with pytest.raises(InvalidParamsError, match="max_tool_rounds"):
        ChatPanel(tools=[lookup], max_tool_rounds=0)


# -- in a real kernel: %llm_chat --tools, buttons clicked as a front-end clicks -----------

KERNEL_SETUP = '''%load_ext gleitzeit_nb
import asyncio
RAN = []
def get_rows(n: int) -> str:
    "The first rows."
    RAN.append(n)
    return 'city,temp\\nParis,21\\nOslo,12'
'''


@pytest.fixture(scope="module")
def kernel(shared_sim):
    k = start_kernel(shared_sim.url, KERNEL_SETUP, GLEITZEIT_DISPLAY="live")
    yield k
    k.shutdown()


@pytest.fixture
def fe(kernel, sim):
    kernel.run("RAN.clear()")
    return Frontend(kernel)


def ask_in_panel(fe: Frontend, host: str) -> dict[str, str]:
    """A panel made by the magic asks; its buttons (their comm ids) show inside its turn."""
    cell = fe.execute(f"p = %llm_chat -m llama3.2 --host {host} --tools get_rows "
                      "--approve always\nt = p.send('Show two rows.')")
    assert fe.finish(cell)["status"] == "ok"
    # (both before the next cell: its output collection drops other cells' messages)
    buttons = {b: fe.wait_for_button(b) for b in ("Approve", "Refuse")}
    assert fe.k.value("p.pending_approval in p.transcript.children[-1].children") is True
    md = fe.k.value("p.transcript.children[-1].children[1].outputs[0]['data']['text/markdown']")
    assert "<code>🔧 get_rows(n=2)</code> ❔ waiting for approval" in md
    return buttons


@pytest.mark.parametrize("button", ["Approve", "Refuse"])
@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_panel_buttons_decide_in_a_kernel(fe, sim, api, button):
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 2}}], then="Rows: {results}")
    fe.click(ask_in_panel(fe, sim.url + ("/v1" if api == "openai" else ""))[button])
    done = fe.execute("r = await asyncio.wait_for(t, 10)\n"
                      "print('RESULT', r.tool_calls[0].status, RAN, p.pending_approval)")
    assert fe.finish(done)["status"] == "ok"
    result = "ok [2] None" if button == "Approve" else "refused [] None"
    assert f"RESULT {result}" in fe.stdout(done)
    tool_msg = chats(sim)[1]["messages"][-1]
    if button == "Approve":
        assert tool_msg["content"] == "city,temp\nParis,21\nOslo,12"
    else:  # the refusal reaches the model
        assert tool_msg["content"].startswith("Error: the user refused this call")
    assert fe.k.value("len(p.transcript.children[-1].children)") == 2  # the buttons are gone
    md = fe.k.value("p.transcript.children[-1].children[1].outputs[0]['data']['text/markdown']")
    assert ("<code>🔧 get_rows(n=2)</code> " + ("✓" if button == "Approve" else "✗ refused")) in md
    assert "Rows: Based on get_rows: " in md


@pytest.mark.parametrize("api", ["ollama", "openai"])
def test_stop_while_waiting_for_approval_in_a_kernel(fe, sim, api):
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 2}}])
    approve = ask_in_panel(fe, sim.url + ("/v1" if api == "openai" else ""))["Approve"]
    stop = fe.execute("p.stop()\nprint('RESULT', await asyncio.wait_for(t, 5), p.pending_approval)")
    assert fe.finish(stop)["status"] == "ok" and "RESULT None None" in fe.stdout(stop)
    fe.click(approve)  # a late click does nothing
    time.sleep(0.3)
    assert fe.k.value("RAN") == [] and len(chats(sim)) == 1
    history = fe.k.value("[m['content'] for m in __import__('gleitzeit_nb.app.connections', "
                         "fromlist=['x']).CONNECTIONS.sessions.get(p.session).messages]")
    assert history[2] == "Error: not run: the user interrupted." and len(history) == 4
    md = fe.k.value("p.transcript.children[-1].children[1].outputs[0]['data']['text/markdown']")
    assert "⏹ interrupted" in md and "stopped" in md
    assert "stopped after" in fe.k.value("p.status.value")
    bad = fe.k.run("%llm_chat --tools nothing_here")
    assert bad.status == "error"
    assert "UsageError: --tools 'nothing_here' is not defined" in bad.stderr
