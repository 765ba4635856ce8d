"""Exporting a conversation (.md, .html, .json and back) and %llm_usage, in a real kernel
against the simulator."""

from __future__ import annotations

import json
import re
import time

import pytest

from .kernel import start_kernel

SHARED_SIM = True


@pytest.fixture(scope="module")
def kernel(shared_sim):
    k = start_kernel(shared_sim.url, "%load_ext gleitzeit_nb\nimport gleitzeit_nb",
                     GLEITZEIT_DISPLAY="final")
    yield k
    k.shutdown()


@pytest.fixture(autouse=True)
def fresh(kernel):
    kernel.run("%llm_reset\n%llm_reset pics\n%llm_usage --reset\n"
               "%config LLMMagics.model = 'qwen3:latest'\n%config LLMMagics.replay = 'off'")


def chats(sim):
    return [r for r in sim.requests if r.path == "/api/chat"]


def converse(kernel, sim, tmp_path):
    """A conversation with thinking, model HTML, an image and an interrupted turn."""
    sim.reply_with("<b>bold</b><script>alert(1)</script> and **markdown**",
                   thinking="Let me think about <i>this</i>.")
    assert kernel.run("%%llm --think\nFirst question").status == "ok"
    img = tmp_path / "dot.png"
    kernel.run(f"from PIL import Image\nImage.new('RGB', (64, 48), 'red').save(r'{img}')")
    assert kernel.run(f"%vision -s default -m llava:latest {img} What colour?").status == "ok"
    sim.token_delay = 0.05
    # (llava: the history now holds an image, which a text-only model refuses)
    msg_id = kernel.kc.execute("%%llm -m llava:latest\nA long one [[tokens=200]]")
    deadline = time.monotonic() + 10
    while len(chats(sim)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.4)
    kernel.interrupt()
    ex = kernel.collect(msg_id)
    assert ex.status == "error", ex.msgs
    assert ex.error["ename"] == "KeyboardInterrupt"
    sim.token_delay = 0.0


def test_export_md_html_json_and_load_back(kernel, sim, tmp_path):
    converse(kernel, sim, tmp_path)
    for ext in ("md", "html", "json"):
        ex = kernel.run(f"%llm_export default {tmp_path}/chat.{ext}")
        assert ex.status == "ok", ex.error
        assert f"written to {tmp_path}/chat.{ext}" in ex.text()
    md = (tmp_path / "chat.md").read_text()
    assert "**qwen3:latest**" in md and "simulator" in md  # each turn's model and stats
    assert "<details><summary>Thinking" in md  # collapsed
    assert "&lt;script>" in md and "<script>" not in md
    assert md.count("data:image/jpeg;base64,") == 1  # the image, as a thumbnail
    assert "interrupted — partial reply" in md
    page = (tmp_path / "chat.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page.lower()
    assert "<strong>markdown</strong>" in page  # rendered, and sanitised
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert re.search(r'<img class="thumb" src="data:image/jpeg;base64,[A-Za-z0-9+/=]+"', page)
    assert "<link" not in page and 'src="http' not in page
    doc = json.loads((tmp_path / "chat.json").read_text())
    assert doc["format"] == "gleitzeit_nb.session"
    roles = [m["role"] for m in doc["messages"]]
    assert roles == ["user", "assistant"] * 3
    assert doc["messages"][-1]["interrupted"] is True
    # load back under another name and continue: the next turn carries the history
    ex = kernel.run(f"s = gleitzeit_nb.Session.load(r'{tmp_path}/chat.json', name='again')\n"
                    "%llm -s again -m llava:latest And now?")
    assert ex.status == "ok", ex.error
    sent = chats(sim)[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant"] * 3 + ["user"]
    assert sent[0]["content"] == "First question"
    assert sent[2].get("images")  # the image went along


def test_export_errors_say_what_to_do(kernel, tmp_path):
    ex = kernel.run(f"%llm_export {tmp_path}/chat.pdf")
    assert ex.status == "error" and "use a path ending in .md, .html or .json" in \
        "".join(ex.error["traceback"])
    (tmp_path / "x.json").write_text("{}")
    ex = kernel.run(f"gleitzeit_nb.Session.load(r'{tmp_path}/x.json')")
    assert "is not a gleitzeit_nb session export" in "".join(ex.error["traceback"])


def test_usage_counts_match_the_requests(kernel, sim, tmp_path):
    for i in range(3):
        assert kernel.run(f"%llm -m qwen3:latest question {i}").status == "ok"
    assert kernel.run("%llm -m llama3.2:latest other").status == "ok"
    rows = kernel.value("gleitzeit_nb.usage().to_dict('records')")
    by_model = {r["model"]: r for r in rows}
    assert by_model["qwen3:latest"]["requests"] == 3 and by_model["llama3.2:latest"]["requests"] == 1
    sent = chats(sim)
    assert len(sent) == 4
    # output tokens as the server reported them
    assert by_model["qwen3:latest"]["output_tokens"] > 0
    assert all(r["source"] == "live" and r["server"] == sim.url for r in rows)
    # replayed calls are counted apart
    store = tmp_path / "store"
    kernel.run(f"%config LLMMagics.store = '{store}'\n%config LLMMagics.replay = 'record'\n%llm_reset\n"
               "%llm -m qwen3:latest recorded\n%config LLMMagics.replay = 'replay'\n"
               "%llm_reset\n%llm -m qwen3:latest recorded")
    kernel.run("%config LLMMagics.replay = 'off'")
    rows = kernel.value("gleitzeit_nb.usage().to_dict('records')")
    replayed = [r for r in rows if r["source"] == "replayed"]
    assert len(replayed) == 1 and replayed[0]["requests"] == 1 and replayed[0]["seconds"] == 0
    live_qwen = [r for r in rows if r["source"] == "live" and r["model"] == "qwen3:latest"]
    assert live_qwen[0]["requests"] == 4
    shown = kernel.run("%llm_usage").text("text/markdown")
    assert "| qwen3:latest |" in shown and "replayed" in shown and "5 live requests" in shown


def test_export_of_two_tool_turns_shows_each_calls_own_result(kernel, sim, tmp_path):
    """(Call ids repeat from turn to turn: call_1_1 both times.)"""
    kernel.run("def get_rows(n: int) -> str:\n    '''Rows.'''\n    return f'rows-{n}'")
    for n in (1, 2):
        sim.script_tools([{"name": "get_rows", "arguments": {"n": n}}], then=f"turn {n}")
        assert kernel.run(f"%%llm --tools get_rows -m llama3.2:latest\nrows {n}").status == "ok"
    kernel.run(f"%llm_export {tmp_path}/tools.md")
    md = (tmp_path / "tools.md").read_text()
    first, second = md.split("get_rows(n=1)")[1], md.split("get_rows(n=2)")[1]
    assert "rows-1" in first.split("turn 1")[0] and "rows-2" in second.split("turn 2")[0]


def test_usage_counts_batch_rows_and_embeddings(kernel, sim):
    ex = kernel.run("import gleitzeit_nb.batch as B\n"
                    "B.run_batch(['a', 'b', 'c'], model='llama3.2:latest', progress=False)\n"
                    "B.embed(['x', 'y'], model='nomic-embed-text:latest', progress=False)")
    assert ex.status == "ok", ex.error
    rows = kernel.value("gleitzeit_nb.usage().to_dict('records')")
    chat = [r for r in rows if r["kind"] == "chat"]
    embed = [r for r in rows if r["kind"] == "embed"]
    assert [r["requests"] for r in chat] == [3] and chat[0]["model"] == "llama3.2:latest"
    sent = [r for r in sim.requests if r.path == "/api/embed"]
    assert embed and sum(r["requests"] for r in embed) == len(sent)


def test_usage_counts_failed_requests_apart_and_skips_unreached_servers(kernel, sim, dead_url):
    assert kernel.run("%llm -m qwen3:latest fine").status == "ok"
    sim.inject("http_error", status=400)
    assert kernel.run("%llm -m qwen3:latest fails").status == "error"
    assert kernel.run(f"%llm --host {dead_url} -m qwen3:latest nobody there").status == "error"
    rows = kernel.value("gleitzeit_nb.usage().to_dict('records')")
    assert [(r["server"], r["requests"], r["failed"]) for r in rows] == [(sim.url, 2, 1)]
    assert "2 live requests (1 failed)" in kernel.run("%llm_usage").text("text/markdown")


def test_export_refuses_unknown_sessions_and_takes_quoted_home_paths(kernel, sim, tmp_path):
    assert kernel.run("%llm -s work -m qwen3:latest hello").status == "ok"
    ex = kernel.run(f"%llm_export typo {tmp_path}/x.md")
    assert ex.status == "error" and "No session named 'typo' (sessions: " in ex.stderr
    assert "work" in ex.stderr and not (tmp_path / "x.md").exists()
    assert "typo" not in kernel.value("gleitzeit_nb.app.connections.CONNECTIONS.sessions.names()")
    home = tmp_path / "home dir"
    kernel.run(f"import os\nos.environ['HOME'] = {str(home)!r}")
    out = kernel.run("%llm_export work '~/my export.md'")
    assert out.status == "ok", out.error
    assert "hello" in (home / "my export.md").read_text()


def test_the_system_prompt_is_exported_and_loaded_but_sent_only_as_before(kernel, sim, tmp_path):
    assert kernel.run("%%llm -s sys --system 'Answer like a $pirate' -m qwen3:latest\nhi").status == "ok"
    assert kernel.run("%%llm -s sys -m qwen3:latest\nagain").status == "ok"
    second = chats(sim)[-1].body["messages"]
    assert [m["role"] for m in second] == ["user", "assistant", "user"]  # no system: as today
    assert all("system" not in m for m in second)
    kernel.run(f"%llm_export sys {tmp_path}/s.md\n%llm_export sys {tmp_path}/s.html\n"
               f"%llm_export sys {tmp_path}/s.json")
    md, page = (tmp_path / "s.md").read_text(), (tmp_path / "s.html").read_text()
    assert "**System**\n\nAnswer like a" in md and md.count("**System**") == 1
    assert "Answer like a" in page and "pirate" in page
    kernel.run(f"again = gleitzeit_nb.Session.load(r'{tmp_path}/s.json', name='sys2')")
    assert kernel.value("again.messages[0]['system']") == "Answer like a $pirate"


@pytest.mark.parametrize("change, problem", [
    ({"version": 99}, "version 99 session export"),
    ({"messages": [{"role": "bot", "content": "x"}]}, "message 0 is damaged (role 'bot'"),
    ({"messages": [{"role": "user", "content": None}]}, "content must be text, not NoneType"),
    ({"messages": [{"role": "user", "content": ["x"]}]}, "content must be text, not list"),
    ({"messages": [{"role": "user", "content": "x", "images": "abc"}]}, "images must be a list"),
    ({"messages": [{"role": "user", "content": "x"},
                   {"role": "assistant", "content": "y", "stats": 3}]},
     "message 1 is damaged (stats must be a dict"),
])
def test_damaged_session_files_are_refused_naming_the_place(tmp_path, change, problem):
    from gleitzeit_nb import Session
    from gleitzeit_nb.core.errors import InvalidParamsError

    doc = {"format": "gleitzeit_nb.session", "version": 1, "name": "d",
           "messages": [{"role": "user", "content": "x"}], **change}
    path = tmp_path / "d.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidParamsError) as err:
        Session.load(path)
    assert str(path) in str(err.value) and problem in str(err.value)
    assert "export the session again" in str(err.value)


def test_loading_over_a_session_with_messages_needs_replace(kernel, sim, tmp_path):
    assert kernel.run("%llm -s keep -m qwen3:latest mine").status == "ok"
    kernel.run(f"%llm_export keep {tmp_path}/k.json")
    ex = kernel.run(f"gleitzeit_nb.Session.load(r'{tmp_path}/k.json')")
    assert ex.status == "error" and "replace=True" in ex.error["evalue"]
    assert "name=" in ex.error["evalue"]
    ok = kernel.run(f"gleitzeit_nb.Session.load(r'{tmp_path}/k.json', replace=True)")
    assert ok.status == "ok", ok.error


def test_md_export_labels_tool_steps_by_model_and_keeps_remote_images_inert(kernel, sim,
                                                                             tmp_path):
    import mistune  # (nbconvert's Markdown parser)

    kernel.run("def get_rows(n: int) -> str:\n    '''Rows.'''\n    return f'rows-{n}'")
    sim.script_tools([{"name": "get_rows", "arguments": {"n": 1}}],
                     then="See ![t](https://evil.example/track.png) and [docs](https://x.org)")
    assert kernel.run("%%llm -s img --tools get_rows -m llama3.2:latest\nrows").status == "ok"
    kernel.run(f"%llm_export img {tmp_path}/img.md")
    md = (tmp_path / "img.md").read_text()
    assert "**llama3.2:latest (tool calls)**" in md and "model (tool calls)" not in md
    page = mistune.html(md)
    assert "evil.example" in page and "<img" not in page
    assert "![t](https://evil.example/track.png)" in re.sub(r"<[^>]+>", "", page)
