"""%%llm and friends in a real kernel against the simulator, asserted on iopub messages."""

from __future__ import annotations

import time

import pytest

from .kernel import magics_kernel
from .sim_data import chat_bodies as chats

SHARED_SIM = True


@pytest.fixture(scope="module")
def kernel(shared_sim):
    yield from magics_kernel(shared_sim)


@pytest.fixture(autouse=True)
def fresh(kernel):
    """The magics' settings back to the defaults used here; the session forgotten."""
    kernel.run("%llm_reset\n%config LLMMagics.model = 'llama3.2:latest'\n"
               "%config LLMMagics.host = ''\n%config LLMMagics.display = 'auto'")


def reply_markdown(ex):
    finals = [d for d in ex.final_outputs().values() if "text/markdown" in d]
    assert len(finals) == 1, ex.msgs
    return finals[0]


def test_streams_updates_and_final_text(kernel, sim):
    sim.token_delay = 0.01
    ex = kernel.run("%%llm -o r\nTell me a story [[tokens=60]]")
    assert ex.status == "ok", ex.error
    kinds = [m["msg_type"] for m in ex.msgs]
    assert kinds[0] == "display_data" and "waiting for" in ex.msgs[0]["content"]["data"]["text/plain"]
    assert kinds.count("update_display_data") >= 3  # streamed, not one final dump
    ids = {m["content"]["transient"]["display_id"] for m in ex.of_type("display_data", "update_display_data")}
    assert len(ids) == 1  # one display per reply, updated in place
    text = kernel.run("print(r)").stdout.rstrip("\n")
    bundle = reply_markdown(ex)
    assert bundle["text/plain"].startswith(text) and len(text.split()) == 60
    assert "60 tokens" in bundle["text/markdown"]  # stats footer
    assert not ex.of_type("clear_output")


def test_text_held_by_the_throttle_shows_when_the_stream_pauses(kernel, sim):
    sim.token_delay = 0.01
    sim.inject("stall_after", after=6, seconds=2.0)
    ex = kernel.run("%%llm\nhi [[tokens=12]]")
    final = reply_markdown(ex)["text/plain"].split()
    shown = [m["content"]["data"]["text/plain"].split() for m in ex.of_type("update_display_data")]
    assert final[:6] in shown  # the 6 chunks before the stall, shown during the stall


def test_model_html_is_escaped(kernel, sim):
    sim.reply_with("Hi <script>alert(1)</script> and <img src=x onerror=alert(2)> and `<b>code</b>`")
    bundle = reply_markdown(kernel.run("%%llm\nsay something"))
    md = bundle["text/markdown"]
    assert "<script" not in md and "<img" not in md
    assert "&lt;script>alert(1)&lt;/script>" in md and "&lt;img src=x onerror=alert(2)>" in md
    assert "<code>&lt;b&gt;code&lt;/b&gt;</code>" in md  # tag-like code spans become safe <code>
    assert "<script>alert(1)</script>" in bundle["text/plain"]


def test_session_memory_interpolation_and_capture(kernel, sim):
    kernel.run("city = 'Lisbon'\nclass T: pass\nt = T(); t.n = 3")
    kernel.run("%%llm -s trip\nPlan {t.n} days in {city}, not {{braces}}")
    kernel.run("%%llm -s trip -o second\nAnd the food?")
    first, second = chats(sim)
    assert first["messages"][-1]["content"] == "Plan 3 days in Lisbon, not {braces}"
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "user"]
    assert second["messages"][0]["content"] == first["messages"][-1]["content"]
    assert second["messages"][1]["content"]  # the first reply went back as context
    assert kernel.run("print(type(second).__name__, len(second) > 0)").stdout.strip() == "Reply True"
    hist = kernel.run("%llm_history trip")
    assert "Lisbon" in hist.text() and "And the food?" in hist.text()
    kernel.run("%%llm -s trip --new\nStart over")
    assert len(chats(sim)[-1]["messages"]) == 1


def test_undefined_name_is_a_clear_error(kernel, sim):
    ex = kernel.run("%%llm\nSummarise {df_sales}")
    assert ex.status == "error" and "df_sales" in ex.error["evalue"]
    assert len(ex.error["traceback"]) <= 3 and chats(sim) == []


def test_options_reach_the_request(kernel, sim):
    kernel.run("%%llm -t 0.4 --max-tokens 9 --seed 5 --system 'Be brief.' -m qwen3\nHi")
    body = chats(sim)[-1]
    assert body["model"] == "qwen3:latest" and body["options"] == {"temperature": 0.4, "num_predict": 9, "seed": 5}
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    kernel.run("%config LLMMagics.temperature = 0.1\n%config LLMMagics.max_tokens = 20")
    kernel.run("%llm What's up?")  # an apostrophe in a line prompt
    body = chats(sim)[-1]
    assert body["options"] == {"temperature": 0.1, "num_predict": 20}
    assert body["messages"][-1]["content"] == "What's up?"
    kernel.run("%config LLMMagics.temperature = None\n%config LLMMagics.max_tokens = None")


def test_schema_returns_validated_object(kernel, sim):
    kernel.run("from pydantic import BaseModel\n"
               "class City(BaseModel):\n    name: str\n    population: int\n    coastal: bool")
    ex = kernel.run("%%llm --schema City -o city\nDescribe Lisbon as JSON")
    assert ex.status == "ok", ex.error
    out = kernel.run("print(type(city).__name__, isinstance(city.population, int))").stdout.strip()
    assert out == "City True"
    assert chats(sim)[-1]["format"]["properties"]["population"]["type"] == "integer"


def test_json_and_file_options(kernel, sim, tmp_path):
    ex = kernel.run("%%llm --json -o data\nGive me a JSON object")
    assert ex.status == "ok", ex.error
    assert chats(sim)[-1]["format"] == "json"
    assert kernel.value("type(data).__name__") in ("dict", "list")
    notes = tmp_path / "notes.txt"
    notes.write_text("Sales rose 12% in March.", encoding="utf-8")
    ex = kernel.run(f"%%llm --file {notes}\nSummarise the notes")
    assert ex.status == "ok", ex.error
    sent = chats(sim)[-1]["messages"][-1]["content"]
    assert "Sales rose 12% in March." in sent and sent.rstrip().endswith("Summarise the notes")
    missing = kernel.run(f"%%llm --file {tmp_path / 'nope.txt'}\nSummarise")
    assert missing.status == "error" and "nope.txt" in missing.error["evalue"]
    assert "nope.txt" not in chats(sim)[-1]["messages"][-1]["content"]  # never pasted into a prompt


def test_schema_truncated_reply_says_so(kernel, sim):
    kernel.run("schema = {'type': 'object', 'properties': {'a': {'type': 'string'}}, 'required': ['a']}")
    ex = kernel.run("%%llm --schema schema --max-tokens 2\nGive JSON")
    assert ex.status == "error" and "StructuredOutputError" == ex.error["ename"]
    assert "length limit" in ex.error["evalue"]
    sim.reply_with('{"b": 1}')
    ex = kernel.run("%%llm --schema schema\nGive JSON")
    assert ex.status == "error" and "'a'" in ex.error["evalue"] and "length" not in ex.error["evalue"]


def test_think_block(kernel, sim):
    sim.token_delay = 0.02  # 40 words of thinking: streamed over ~0.8 s
    sim.reply_with("Rayleigh scattering.", thinking="Short wavelengths scatter more. " * 10)
    ex = kernel.run("%%llm -m qwen3 --think\nWhy is the sky blue?")
    assert chats(sim)[-1]["think"] is True
    updates = [m["content"]["data"]["text/markdown"] for m in ex.of_type("update_display_data")]
    assert any("<details open>" in u and "Short wavelengths" in u for u in updates)  # shown live
    md = reply_markdown(ex)["text/markdown"]
    assert "<details>" in md and "Thinking" in md and "Short wavelengths" in md  # collapsed
    assert "Rayleigh scattering." in md.split("</details>", 1)[1]
    kernel.run("%%llm -m qwen3 --think high\nAgain")
    assert chats(sim)[-1]["think"] == "high"


def test_final_mode_sends_one_display(kernel, sim):
    sim.token_delay = 0.005
    kernel.run("%config LLMMagics.display = 'final'")
    ex = kernel.run("%%llm\nhello [[tokens=40]]")
    assert len(ex.of_type("display_data")) == 1 and not ex.of_type("update_display_data")


def test_trailing_question_mark_reaches_the_magic(kernel, sim):
    ex = kernel.run("%llm What is 2+2?")
    assert ex.status == "ok" and chats(sim)[-1]["messages"][-1]["content"] == "What is 2+2?"


def test_bad_options_are_short_usage_errors(kernel, sim):
    ex = kernel.run("%%llm --bogus\nhi")
    assert ex.status == "error" and "UsageError: unrecognized arguments: --bogus" in ex.stderr
    ex = kernel.run("%config LLMMagics.temperature = 5")  # %config reports, the old value stays
    assert "between 0 and 2" in ex.stderr + str(ex.error)
    assert kernel.value("get_ipython().find_magic('llm').__self__.temperature") is None
    assert chats(sim) == []


def test_errors_are_readable(kernel, sim, dead_url):
    kernel.run(f"%config LLMMagics.host = '{dead_url}'")
    down = kernel.run("%%llm\nhi")
    kernel.run("%config LLMMagics.host = ''")
    missing = kernel.run("%%llm -m llama9:70b\nhi")
    sim.inject("mid_stream_error", after=5, message="llama runner crashed")
    broken = kernel.run("%%llm\nhi [[tokens=50]]")
    sim.inject("drop", after=3)
    dropped = kernel.run("%%llm\nhi [[tokens=50]]")
    for ex, ename, fix in ((down, "ProviderUnavailableError", "ollama serve"),
                           (missing, "ModelNotFoundError", "ollama pull llama9:70b"),
                           (broken, "StreamError", "llama runner crashed"),
                           (broken, "StreamError", "Retry the request"),
                           (dropped, "StreamError", "dropped the connection")):
        assert ex.status == "error" and ex.error["ename"] == ename
        text = "\n".join(ex.error["traceback"])
        assert fix in text and len(ex.error["traceback"]) <= 3
        everything = str([m["content"] for m in ex.msgs])
        assert "httpx" not in everything and "Traceback" not in everything
        shown = str([m["content"]["data"] for m in ex.of_type("display_data",
                                                              "update_display_data")])
        assert fix not in shown  # said once, by the cell's error
        assert not any(n in everything for n in ("ReadError", "RemoteProtocolError", "ConnectError"))
    # The partial text of the broken stream stays on screen.
    assert len(reply_markdown(broken)["text/plain"].split()) >= 5
    tb = kernel.run("%tb")
    assert "gleitzeit_nb" in str([m["content"] for m in tb.msgs])  # full traceback on demand


def test_out_var_keeps_the_text_of_a_stalled_stream(kernel, sim):
    sim.inject("stall_after", after=4, seconds=3)
    kernel.run("%config LLMMagics.chunk_timeout = 0.5\nstalled = None")
    try:
        ex = kernel.run("%%llm -o stalled\nhi [[tokens=50]]")
    finally:
        kernel.run("%config LLMMagics.chunk_timeout = 60.0")
    assert ex.error["ename"] == "ProviderTimeoutError"
    assert "%config LLMMagics.chunk_timeout" in "".join(ex.error["traceback"])
    assert len(kernel.value("stalled").split()) == 4


def test_slow_model_load_names_the_notebook_setting(kernel, sim):
    sim.inject("stall_before", seconds=3)
    kernel.run("%config LLMMagics.timeout = 0.5")
    try:
        ex = kernel.run("%%llm\nhi")
    finally:
        kernel.run("%config LLMMagics.timeout = 120.0")
    assert ex.error["ename"] == "ProviderTimeoutError"
    assert "%config LLMMagics.timeout = 600" in ex.error["traceback"][0]


def test_interrupt_closes_stream_keeps_partial(kernel, sim):
    sim.token_delay = 0.02
    msg_id = kernel.kc.execute("%%llm -o part\nLong story [[tokens=1000]]")
    deadline = time.monotonic() + 10
    while sim.active == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.4)
    interrupted_at = time.monotonic()
    kernel.interrupt()
    ex = kernel.collect(msg_id)
    assert sim.wait_for_disconnects(1, timeout=1.0)
    assert sim.disconnects[0].time - interrupted_at < 1.0
    assert ex.status == "error" and ex.error["ename"] == "KeyboardInterrupt"
    # One line saying what happened, not the event loop's internals.
    assert len(ex.error["traceback"]) <= 2 and "connection closed" in ex.error["traceback"][0]
    bundle = reply_markdown(ex)
    assert len(bundle["text/plain"].split()) >= 5 and "interrupted" in bundle["text/markdown"]
    sim.token_delay = 0.0
    nxt = kernel.run("%%llm\nAre you still there?")
    assert nxt.status == "ok" and reply_markdown(nxt)["text/plain"]
    # The interrupted turn is kept in the session, marked, and sent on with the next prompt.
    kept = chats(sim)[-1]["messages"][1]
    assert kept["role"] == "assistant" and len(kept["content"].split()) >= 5
    assert kept["content"].split()[:5] == bundle["text/plain"].split()[:5]
    turn = kernel.value("__import__('gleitzeit_nb.app.connections', fromlist=['x'])"
                        ".CONNECTIONS.sessions.get().messages[1]")
    assert turn["interrupted"] is True and turn["content"] == kept["content"]
    assert kernel.value("part") == kept["content"]  # -o keeps what arrived


def test_interrupt_in_a_cell_that_awaits(kernel, sim):
    """ipykernel only cancels the task of a cell with top-level await; the request must stop."""
    sim.token_delay = 0.02
    msg_id = kernel.kc.execute("import asyncio\nawait asyncio.sleep(0)\n"
                               "%llm Long story [[tokens=1000]]")
    deadline = time.monotonic() + 10
    while sim.active == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    kernel.interrupt()
    ex = kernel.collect(msg_id)
    assert ex.status == "error" and ex.error["ename"] == "KeyboardInterrupt"
    assert sim.wait_for_disconnects(1, timeout=1.0)
    assert sim.disconnects[0].chunks_sent < 500
    sim.token_delay = 0.0
    assert kernel.run("await asyncio.sleep(0)\n%llm Still there?").status == "ok"


def test_other_interrupts_keep_their_traceback(kernel):
    msg_id = kernel.kc.execute("import time\nfor _ in range(100):\n    time.sleep(0.05)")
    time.sleep(0.5)
    kernel.interrupt()
    ex = kernel.collect(msg_id)
    assert ex.error["ename"] == "KeyboardInterrupt"
    assert "connection closed" not in str(ex.error["traceback"])
    assert "time.sleep" in str(ex.error["traceback"])


def test_python_twin(kernel, sim):
    ex = kernel.run("import gleitzeit_nb\nr = gleitzeit_nb.chat('Hello [[tokens=7]]', model='llama3.2')\n"
                    "print(len(r.split()), r.usage.output_tokens, type(r).__name__)\nr")
    assert ex.stdout.strip() == "7 7 Reply"
    assert "text/markdown" in ex.of_type("execute_result")[0]["content"]["data"]


def test_llm_models_table(kernel, sim):
    ex = kernel.run("%llm_models")
    html = ex.of_type("execute_result")[0]["content"]["data"]["text/html"]
    assert "llava:latest" in html and "vision" in html and "nomic-embed-text" in html


def test_llm_chat_shows_a_panel_sharing_the_session(kernel, sim):
    kernel.run("%%llm -s shared\nHello from a cell")
    ex = kernel.run("p = %llm_chat -s shared\nprint(type(p).__name__, p.session, len(p.messages))")
    assert ex.status == "ok", ex.error
    assert "ChatPanel shared 2" in ex.stdout
    bad = kernel.run("%llm_chat stray words")
    assert bad.status == "error" and "options only" in bad.stderr


def test_llm_chat_takes_the_magics_settings(kernel, sim):
    kernel.run("%config LLMMagics.timeout = 42.0\n%config LLMMagics.max_tokens = 5")
    try:
        ex = kernel.run("p = %llm_chat\nr = await p.send('Hi [[tokens=50]]')\n"
                        "import gleitzeit_nb.app.connections as C\n"
                        "print(p.timeout, C.CONNECTIONS.backend(p.host).timeout)")
        assert ex.status == "ok", ex.error
        assert ex.stdout.strip() == "None 42.0"  # the panel uses the setting
        assert chats(sim)[-1]["options"]["num_predict"] == 5
    finally:
        kernel.run("%config LLMMagics.timeout = 120.0\n%config LLMMagics.max_tokens = None")


def test_line_magic_braces_are_ours_not_ipythons(kernel, sim):
    kernel.run("city = 'Lisbon'")
    assert kernel.run("%llm Use {{literal}} braces for {city}").status == "ok"
    assert chats(sim)[-1]["messages"][-1]["content"] == "Use {literal} braces for Lisbon"
    ex = kernel.run("%llm What is {1+1}?")  # IPython would have evaluated it; we never do
    assert ex.status == "error" and "is not a placeholder" in ex.error["evalue"]
    # option values still take notebook variables, the IPython way or ours
    kernel.run("mname = 'qwen3'\nstyle = 'Be brief.'")
    assert kernel.run("%llm -m $mname --system {style} Hello").status == "ok"
    body = chats(sim)[-1]
    assert body["model"].startswith("qwen3") and body["messages"][0]["content"] == "Be brief."


def test_llm_chat_shows_the_panel_once_and_batch_help_lists_options(kernel, sim):
    ex = kernel.run("%llm_chat -s once")
    shown = [m for m in ex.of_type("display_data", "execute_result")
             if "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
    assert len(shown) == 1
    helped = kernel.run("%llm_batch?")
    text = str(helped.reply["content"].get("payload"))
    assert "--concurrency" in text and "--on-error" in text
