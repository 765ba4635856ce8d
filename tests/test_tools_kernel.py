"""Tool calling in a real kernel against the simulator, on both APIs: ``%%llm --tools`` and
``chat(tools=)``, request bodies checked at the simulator (schemas, then the ``tool`` results),
refusal, a failing tool, an interrupt during a slow tool, the capability check, and replay."""

from __future__ import annotations

import json
import time

import pytest

from .kernel import start_kernel
from .sim_data import chat_bodies as chats

SHARED_SIM = True

TOOLS_CODE = '''
import time
def get_rows(n: int) -> str:
    """The first rows of the table.

    Args:
        n: How many rows.
    """
    rows = ["city,temp", "Paris,21", "Oslo,12", "Lima,19", "Rome,25"]
    return "\\n".join(rows[: n + 1])

def boom(n: int) -> str:
    """Always fails."""
    raise ValueError("no table loaded")

def slow(n: int) -> str:
    """Takes long."""
    time.sleep(30)
    return "late"
'''


@pytest.fixture(scope="module")
def kernel(shared_sim):
    k = start_kernel(shared_sim.url, "%load_ext gleitzeit_nb\nimport gleitzeit_nb\n" + TOOLS_CODE,
                     GLEITZEIT_DISPLAY="final")
    yield k
    k.shutdown()


@pytest.fixture(params=["ollama", "openai"])
def host(request, kernel, shared_sim):
    kernel.run("%llm_reset\n%config LLMMagics.model = 'llama3.2:latest'\n"
               "%config LLMMagics.replay = 'off'")
    return shared_sim.url + ("/v1" if request.param == "openai" else "")


def tool_messages(body):
    return [m for m in body["messages"] if m["role"] == "tool"]


def markdown(ex):
    outs = [d for d in ex.final_outputs().values() if "text/markdown" in d]
    assert len(outs) == 1, ex.msgs
    return outs[0]


def test_two_rounds_show_the_call_and_the_answer(kernel, sim, host):
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 3}}], then="Answer: {results}")
    ex = kernel.run(f"%%llm --tools get_rows --host {host} -o r\nShow me three rows.")
    assert ex.status == "ok", ex.error
    out = markdown(ex)
    md, plain = out["text/markdown"], out["text/plain"]
    assert "<details><summary><code>🔧 get_rows(n=3)</code> ✓" in md
    assert md.index("get_rows(n=3)") < md.index("Answer: Based on get_rows")  # call, then answer
    assert "Paris,21" in plain and "[🔧 get_rows(n=3) → ✓" in plain
    first, second = chats(sim)
    schema = first["tools"][0]["function"]
    assert schema["name"] == "get_rows" and schema["parameters"]["required"] == ["n"]
    assert schema["parameters"]["properties"]["n"] == {"type": "integer",
                                                      "description": "How many rows."}
    assert not tool_messages(first)
    [result] = tool_messages(second)
    assert result["content"] == "city,temp\nParis,21\nOslo,12\nLima,19"
    assistant = second["messages"][-2]
    call = assistant["tool_calls"][0]
    if host.endswith("/v1"):
        assert result["tool_call_id"] == call["id"] == "call_1_1"
        assert json.loads(call["function"]["arguments"]) == {"n": 3}
    else:
        assert result["tool_name"] == "get_rows" and call["function"]["arguments"] == {"n": 3}
    r = kernel.value("[str(r), [(c.name, c.arguments, c.status, c.result) for c in r.tool_calls]]")
    assert r[0].startswith("Answer: Based on get_rows: city,temp")
    assert r[1] == [["get_rows", {"n": 3}, "ok", "city,temp\nParis,21\nOslo,12\nLima,19"]]
    # the transcript stays in the session: the next turn sends it
    sim.clear_tool_scripts()
    assert kernel.run(f"%llm --host {host} And the last one?").status == "ok"
    roles = [m["role"] for m in chats(sim)[-1]["messages"]]
    assert roles == ["user", "assistant", "tool", "assistant", "user"]


def test_a_refusal_reaches_the_model(kernel, sim, host):
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 2}}], then="Told: {results}")
    ex = kernel.run(f"r = gleitzeit_nb.chat('Rows?', tools=[get_rows], host='{host}', "
                    "approve=lambda call: call.arguments['n'] > 5)\nprint(r.tool_calls[0].status)")
    assert ex.status == "ok", ex.error
    assert ex.stdout.strip() == "refused"
    [result] = tool_messages(chats(sim)[-1])
    assert result["content"].startswith("Error: the user refused this call")
    assert kernel.value("'✗ refused' in r._repr_markdown_()")  # the Reply shows its calls


def test_nobody_to_approve_in_a_headless_run_is_a_refusal(kernel, sim, host):
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 2}}], then="ok")
    ex = kernel.run(f"%%llm --tools get_rows --approve always --host {host}\nRows?")
    assert ex.status == "ok", ex.error
    assert "nobody can approve it here" in markdown(ex)["text/plain"]
    [result] = tool_messages(chats(sim)[-1])
    assert "refused" in result["content"]


def test_a_tool_exception_reaches_the_model_and_shows(kernel, sim, host):
    sim.script_tools([{"name": "boom", "arguments": {"n": 1}}], then="Sorry: {results}")
    ex = kernel.run(f"%%llm --tools boom --host {host}\nTry it.")
    assert ex.status == "ok", ex.error
    [result] = tool_messages(chats(sim)[-1])
    assert result["content"] == "Error: ValueError: no table loaded"
    md = markdown(ex)["text/markdown"]
    assert "⚠ error" in md and "ValueError: no table loaded" in md


def test_invented_arguments_are_an_error_result(kernel, sim, host):
    sim.script_tools([{"name": "get_rows", "arguments": {"n": "three", "x": 1}}], then="hm")
    ex = kernel.run(f"%%llm --tools get_rows --host {host}\nRows?")
    assert ex.status == "ok", ex.error
    [result] = tool_messages(chats(sim)[-1])
    assert result["content"].startswith("Error: Invalid arguments for tool 'get_rows'")
    assert "n: integer" in result["content"]


def test_an_interrupt_during_a_slow_tool_stops_the_loop(kernel, sim, host):
    sim.script_tools([{"name": "slow", "arguments": {"n": 1}}], then="never sent",
                     text="Checking.")
    msg_id = kernel.kc.execute(f"%%llm --tools slow --host {host} -o r\nGo slowly.")
    deadline = time.monotonic() + 10
    while not chats(sim) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the reply arrived; slow() is sleeping
    start = time.monotonic()
    kernel.interrupt()
    ex = kernel.collect(msg_id, timeout=15)
    assert time.monotonic() - start < 5
    assert ex.status == "error" and "KeyboardInterrupt" in ex.error["ename"]
    time.sleep(1.0)
    assert len(chats(sim)) == 1  # no further request
    kept = kernel.value("[(m['role'], m['content']) for m in gleitzeit_nb.app.connections"
                        ".CONNECTIONS.sessions.get().messages]")
    assert [r for r, _ in kept] == ["user", "assistant", "tool", "assistant"]  # every call answered
    assert kept[1][1] == "Checking." and kept[3][1] == ""  # the text kept once
    assert kernel.run("%llm --host " + host + " still there?").status == "ok"


def test_a_model_without_tools_is_refused_before_any_request(kernel, sim):
    """(Ollama's /api/show says; an OpenAI-compatible server does not publish capabilities.)"""
    ex = kernel.run(f"%%llm --tools get_rows -m gemma3:latest --host {sim.url}\nRows?")
    assert ex.status == "error"
    text = "".join(ex.error["traceback"])
    assert "'gemma3:latest' cannot call tools" in text and "llama3.2:latest" in text
    assert not chats(sim)


def test_replay_offline_reproduces_the_transcript(kernel, sim, host, tmp_path):
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 2}}], then="Seen: {results}")
    store = tmp_path / "store"
    kernel.run(f"%config LLMMagics.store = '{store}'\n%config LLMMagics.replay = 'record'")
    live = kernel.run(f"%%llm --tools get_rows --host {host} -o live\nTwo rows?")
    assert live.status == "ok", live.error
    assert len(list(store.glob("*.json"))) == 2  # one recording per round
    kernel.run("%llm_reset\n%config LLMMagics.replay = 'replay'")
    dead = "http://127.0.0.1:9" + ("/v1" if host.endswith("/v1") else "")
    before = len(chats(sim))
    again = kernel.run(f"%%llm --tools get_rows --host {dead} -o again\nTwo rows?")
    assert again.status == "ok", again.error
    assert len(chats(sim)) == before  # offline
    plain_live = markdown(live)["text/plain"]
    plain_again = markdown(again)["text/plain"]
    assert plain_again.replace(" · replayed", "") == plain_live
    same = kernel.value("[str(live) == str(again), [c.result for c in again.tool_calls] == "
                        "[c.result for c in live.tool_calls], again.status]")
    assert same == [True, True, "replayed"]
    # a tool whose result changed is named, in replay mode an error
    kernel.run("%llm_reset\n_orig = get_rows\n"
               "def get_rows(n: int) -> str:\n    'The first rows of the table.\\n\\n    "
               "Args:\\n        n: How many rows.\\n    '\n    return 'other data'")
    changed = kernel.run(f"%%llm --tools get_rows --host {dead}\nTwo rows?")
    kernel.run("get_rows = _orig\n%config LLMMagics.replay = 'off'")
    assert changed.status == "error"
    text = "".join(changed.error["traceback"])
    assert "tool 'get_rows' (n=2) returned a different result" in text
    assert "other data" in text


def test_parallel_calls_in_one_turn_all_run_with_stable_ids(kernel, sim, host):
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 1}},
                      {"name": "get_rows", "arguments": {"n": 2}}], then="Both: {results}")
    ex = kernel.run(f"%%llm --tools get_rows --host {host}\nTwo looks.")
    assert ex.status == "ok", ex.error
    results = tool_messages(chats(sim)[-1])
    assert [m["content"] for m in results] == ["city,temp\nParis,21",
                                               "city,temp\nParis,21\nOslo,12"]
    if host.endswith("/v1"):
        assert [m["tool_call_id"] for m in results] == ["call_1_1", "call_1_2"]
    md = markdown(ex)["text/markdown"]
    assert md.index("get_rows(n=1)") < md.index("get_rows(n=2)")


def test_max_tool_rounds_ends_the_loop_and_says_so(kernel, sim, host):
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 1}}], then="done", rounds=5)
    ex = kernel.run(f"%%llm --tools get_rows --max-tool-rounds 2 --host {host} -o r\nLoop.")
    assert ex.status == "ok", ex.error
    assert len(chats(sim)) == 3  # two rounds of calls run, the third round's call is not
    out = markdown(ex)
    assert "tool round limit (raise max_tool_rounds)" in out["text/plain"]
    assert kernel.value("[c.status for c in r.tool_calls]") == ["ok", "ok", "skipped"]
    # the history stays valid: every call has its result
    sim.clear_tool_scripts()
    assert kernel.run(f"%llm --host {host} and now?").status == "ok"
    roles = [m["role"] for m in chats(sim)[-1]["messages"]]
    assert roles == ["user"] + ["assistant", "tool"] * 3 + ["assistant", "user"]
