"""The tool loop in-process against the simulator (real loopback HTTP, both APIs): results
that are hard to show, failures that must not escape, escaping of line ends, replay of
approvals and of the round limit, the whole-conversation deadline, what the block shows."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from gleitzeit_nb import replay
from gleitzeit_nb.app.connections import Connections
from gleitzeit_nb.app.render import reply_bundle
from gleitzeit_nb.app.requests import Silent, ask_async, make_request
from gleitzeit_nb.app.tool_render import tool_block
from gleitzeit_nb.app.tool_runs import ToolRun, result_text
from gleitzeit_nb.core.backend import ToolCall
from gleitzeit_nb.core.errors import InvalidParamsError, ProviderTimeoutError

from .sim_data import chat_bodies as chats


@pytest.fixture(params=["ollama", "openai"])
def host(request, sim):
    return sim.url + ("/v1" if request.param == "openai" else "")


def tool_results(sim):
    return [m for m in chats(sim)[-1]["messages"] if m["role"] == "tool"]


class Watching(Silent):
    """A display that remembers each state a call was shown in."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def add_tool(self, run: ToolRun) -> None:
        self.seen.append(run.status)

    def update_tool(self, run: ToolRun) -> None:
        self.seen.append(run.status)


def ask(host: str, tools: list[Any], display: Any = None, conn: Connections | None = None,
        **kw: Any):
    req = make_request("Go.", model="llama3.2:latest", host=host, tools=tools, **kw)
    return asyncio.run(ask_async(req, display, conn or Connections())), req


def counts(n: int) -> pd.Series:
    """Value counts."""
    return pd.Series(["a", "b", "a"]).value_counts()


def array(n: int) -> Any:
    """An array."""
    return np.arange(6).reshape(2, 3)


def raw(n: int) -> bytes:
    """Bytes."""
    return b"\x00\xffbinary"


def leaves(n: int) -> str:
    """Exits like a command-line tool."""
    raise SystemExit(2)


@pytest.mark.parametrize("fn,expect", [(counts, "a    2"), (array, "[[0 1 2]"),
                                       (raw, "b'\\x00\\xffbinary'"), (leaves, "SystemExit: 2")])
def test_awkward_results_and_exits_reach_the_model(sim, host, fn, expect):
    sim.script_tools([{"name": fn.__name__, "arguments": {"n": 1}}], then="ok")
    reply, _ = ask(host, [fn])
    [run] = reply.tool_calls
    assert run.status == ("error" if fn is leaves else "ok")
    [msg] = tool_results(sim)
    assert expect in msg["content"]
    assert tool_block(run)[0].count("\n") == 2  # one line of HTML and its blank line


def test_a_value_that_fails_to_convert_falls_back_to_its_text():
    class Bad:
        shape = (2,)

        def to_string(self, **_: Any) -> str:
            raise RuntimeError("no")

        def __str__(self) -> str:
            return "bad value"

    assert result_text(Bad()) == "bad value"
    assert result_text("x" * 10, limit=4).startswith("xxxx\n… [cut: 6 more characters]")


def test_carriage_returns_cannot_end_the_escaped_block():
    run = ToolRun(id="call_1_1", name="t", arguments={"q": "a\r\rb"}, round=1, status="ok",
                  result="x\r\r# H\r\r![i](https://attacker/leak) \u2028\u2029[c](https://a)")
    md, _ = tool_block(run)
    body = md[:-2]
    assert "\n" not in body and "\r" not in body and "\u2028" not in body
    bundle = reply_bundle("answer", "think\r\rmore", model="m", status="done")
    think = bundle["text/markdown"].split("</details>")[0]
    assert "\r" not in think and "\n" not in think


def test_headless_replay_keeps_the_approvals_given_when_recording(sim, host, tmp_path):
    sim.script_tools([{"name": "counts", "arguments": {"n": 1}},
                      {"name": "counts", "arguments": {"n": 2}}], then="both")
    replay.configure("record", tmp_path / "store")
    try:
        recorded, _ = ask(host, [counts], approve=lambda call: call.arguments["n"] == 1)
        assert [r.status for r in recorded.tool_calls] == ["ok", "refused"]
        replay.configure("replay", tmp_path / "store")
        before = len(chats(sim))
        again, _ = ask(host, [counts], display=Silent(), approve="always")  # nobody to ask
    finally:
        replay.configure("off")
    assert len(chats(sim)) == before
    assert [r.status for r in again.tool_calls] == ["ok", "refused"]
    assert str(again) == str(recorded) and again.status == "replayed"


def test_the_round_limit_replays_and_keeps_its_text_once(sim, host, tmp_path):
    sim.script_tools([{"name": "counts", "arguments": {"n": 1}}], then="done", rounds=5,
                     text="Checking.")
    conn = Connections()
    replay.configure("record", tmp_path / "store")
    try:
        live, _ = ask(host, [counts], conn=conn, max_tool_rounds=1, session="lim")
        history = conn.sessions.get("lim").messages
        replay.configure("replay", tmp_path / "store")
        again, _ = ask(host, [counts], conn=Connections(), max_tool_rounds=1)
    finally:
        replay.configure("off")
    assert [r.status for r in live.tool_calls] == ["ok", "skipped"]
    assert [r.status for r in again.tool_calls] == ["ok", "skipped"]
    assert [(m["role"], m["content"]) for m in history if m["role"] == "assistant"] == [
        ("assistant", "Checking."), ("assistant", "Checking."), ("assistant", "")]


def test_json_output_and_tools_are_refused_together(sim):
    with pytest.raises(InvalidParamsError, match="cannot be combined"):
        make_request("x", tools=[counts], json=True)


def test_the_deadline_bounds_the_whole_conversation(sim, host):
    async def nap(n: int) -> str:
        """Sleeps."""
        await asyncio.sleep(0.6)
        return "rested"

    sim.script_tools([{"name": "nap", "arguments": {"n": 1}}], then="done", rounds=5)
    conn = Connections()
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match="deadline of 1.0 s"):
        ask(host, [nap], conn=conn, deadline=1.0, session="dl")
    assert time.monotonic() - started < 3
    roles = [m["role"] for m in conn.sessions.get("dl").messages]
    assert roles[:3] == ["user", "assistant", "tool"] and roles.count("assistant") == \
        roles.count("tool") + 1  # every call has its result, then the unfinished turn


def test_a_call_shows_running_not_waiting_when_nobody_is_asked(sim, host):
    sim.script_tools([{"name": "counts", "arguments": {"n": 1}}], then="ok")
    watching = Watching()
    ask(host, [counts], display=watching)
    assert "pending" not in watching.seen and watching.seen[0] == "running"
    assert watching.seen[-1] == "ok"


def test_arguments_encoded_twice_decode_the_same_live_and_replayed():
    assert ToolCall.parsed("t", '"{\\"n\\": 3}"').arguments == {"n": 3}
    assert ToolCall.of({"name": "t", "arguments": '{"n": 3}'}).arguments == {"n": 3}
    assert ToolCall.parsed("t", '"just text"').arguments == "just text"
