"""``%%llm -m a,b`` and ``gleitzeit_nb.compare`` in a real kernel against the simulator."""

from __future__ import annotations

import html
import json
import re
import time

import httpx
import pytest

from .kernel import start_kernel

SHARED_SIM = True


@pytest.fixture(scope="module")
def kernel(shared_sim):
    k = start_kernel(shared_sim.url, "%load_ext gleitzeit_nb\nimport gleitzeit_nb, json",
                     GLEITZEIT_DISPLAY="live", GLEITZEIT_REPLAY="", GLEITZEIT_STORE="")
    yield k
    k.shutdown()


@pytest.fixture(autouse=True)
def fresh(kernel):
    kernel.run("%config LLMMagics.host = ''\n%config LLMMagics.display = 'auto'\n"
               "%config LLMMagics.replay = 'off'")


def chats(sim):
    return [r for r in sim.requests if r.path in ("/api/chat", "/v1/chat/completions")]


def oracle(sim, body) -> str:
    """The simulator's reply to the same request sent alone, not streamed (it is deterministic)."""
    r = httpx.post(f"{sim.url}/api/chat", json={**body, "stream": False}, timeout=10)
    return r.json()["message"]["content"]


def table(ex) -> str:
    tables = [d["text/html"] for d in ex.final_outputs().values() if "text/html" in d]
    assert len(tables) == 1, ex.msgs
    return tables[0]


def cells(page: str, tag: str = "td") -> list[str]:
    """The cells' text as shown (tags dropped, <br> as newlines, entities decoded)."""
    raw = re.findall(rf"<{tag}[^>]*>(.*?)</{tag}>", page, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", c.replace("<br>", "\n"))) for c in raw]


def test_two_models_stream_concurrently_side_by_side(kernel, sim):
    sim.token_delay = 0.03  # 30 tokens: each reply takes at least 0.9 s
    ex = kernel.run("%%llm -m llama3.2,qwen3 -o r\nCompare yourselves [[tokens=30]]")
    assert ex.status == "ok", ex.error
    first, second = sorted(chats(sim), key=lambda r: r.time)
    assert second.time - first.time < 0.5, "the second request waited for the first"
    assert sim.max_active == 2  # both generating at once
    ids = {m["content"]["transient"]["display_id"]
           for m in ex.of_type("display_data", "update_display_data")}
    assert len(ids) == 1 and len(ex.of_type("update_display_data")) >= 5  # one output, streamed
    page = table(ex)
    assert [h.split("\n")[0] for h in cells(page, "th")] == ["llama3.2", "qwen3"]
    by_model = {r.body["model"]: oracle(sim, r.body) for r in (first, second)}
    answers, footers = cells(page)[:2], cells(page)[2:]
    assert answers == [by_model["llama3.2:latest"], by_model["qwen3:latest"]]
    assert answers[0] != answers[1]
    for footer in footers:
        assert re.fullmatch(r"simulator · 30 tokens · [\d.]+ tok/s · first token [\d.]+ s · "
                            r"prompt \d+ tokens", footer), footer
    rows = kernel.value("r[['model', 'answer', 'output_tokens', 'status']].values.tolist()")
    assert rows == [["llama3.2", answers[0], 30, "done"], ["qwen3", answers[1], 30, "done"]]
    plain = ex.final_outputs()[next(iter(ids))]["text/plain"]
    assert plain.startswith("── llama3.2 · ") and f"\n{answers[1]}\n" in plain


def test_compare_returns_a_dataframe_with_stats(kernel, sim):
    sim.token_delay = 0.01
    ex = kernel.run("df = gleitzeit_nb.compare('Hi [[tokens=12]]', ['llama3.2', 'qwen3'], "
                    "display=None)\nprint(type(df).__name__, json.dumps(df.to_dict('records')))")
    assert ex.status == "ok", ex.error
    kind, rows = ex.stdout.split(" ", 1)
    rows = json.loads(rows)
    assert kind == "DataFrame" and not ex.final_outputs()  # display=None: nothing shown
    assert [list(r) for r in rows] == [["model", "host", "answer", "output_tokens", "tokens_per_s",
                                        "ttft_s", "load_s", "seconds", "error", "status"]] * 2
    for row, req in zip(rows, sorted(chats(sim), key=lambda r: r.body["model"])):
        assert row["answer"] == oracle(sim, req.body) and row["host"] == sim.url
        assert row["output_tokens"] == 12 and row["status"] == "done" and row["error"] is None
        assert 0 < row["ttft_s"] <= row["seconds"] and row["tokens_per_s"] > 0
        assert row["load_s"] is not None


def test_model_html_stays_escaped(kernel, sim):
    evil = "<b>x</b><script>alert(1)</script> <img src=x onerror=alert(2)>"
    sim.reply_with(evil, count=2)
    ex = kernel.run("%%llm -m llama3.2,qwen3\nSay something")
    page = table(ex)
    assert "<script" not in page and "<img" not in page and "<b>x" not in page
    assert page.count("&lt;b&gt;x&lt;/b&gt;&lt;script&gt;alert(1)&lt;/script&gt; "
                      "&lt;img src=x onerror=alert(2)&gt;") == 2
    assert cells(page)[:2] == [evil, evil]


def test_a_failing_model_shows_its_error_and_the_others_finish(kernel, sim):
    ex = kernel.run("%%llm -m llama3.2,no-such-model -o r\nHello")
    assert ex.status == "ok", ex.error
    answer, failed = cells(table(ex))[:2]
    assert answer.startswith('You said: "Hello".')
    assert "error: ModelNotFoundError: Model 'no-such-model:latest' is not available" in failed
    assert kernel.value("r['status'].tolist()") == ["done", "error"]


def test_capacity_of_one_runs_the_columns_one_after_the_other(kernel, sim):
    sim.parallel, sim.token_delay = 1, 0.02  # llama.cpp's /props says: 1 slot
    try:
        ex = kernel.run(f"%%llm -m llama3.2@{sim.url}/v1,qwen3@{sim.url}/v1 -o r\n"
                        "Hi [[tokens=30]]")
    finally:
        sim.parallel = None
    assert ex.status == "ok", ex.error
    first, second = sorted(chats(sim), key=lambda r: r.time)
    # (30 tokens 0.02 s apart take more than 0.5 s: the second request went out after the
    # first reply ended, instead of waiting in the server's queue)
    assert second.time - first.time > 0.5
    assert kernel.value("r['status'].tolist()") == ["done", "done"]


def test_final_mode_shows_one_table_and_terminal_mode_blocks(kernel, sim):
    kernel.run("%config LLMMagics.display = 'final'")
    ex = kernel.run("%%llm -m llama3.2,qwen3\nHi [[tokens=5]]")
    assert [m["msg_type"] for m in ex.msgs] == ["display_data"]
    assert len(cells(table(ex))) == 4  # two answers, two footers
    ex = kernel.run("r = gleitzeit_nb.compare('Hi [[tokens=5]]', 'llama3.2,qwen3', "
                    "display='terminal')")
    blocks = ex.stdout.split("\n\n")
    assert blocks[0].startswith("── llama3.2 · ") and blocks[1].startswith("── qwen3 · ")
    assert "5 tokens" in blocks[0] and "first token" in blocks[1]


def test_replayed_columns_are_marked(kernel, sim, tmp_path):
    store = str(tmp_path / "store")
    kernel.run(f"%config LLMMagics.store = {store!r}\n%config LLMMagics.replay = 'record'")
    live = kernel.run("%%llm -m llama3.2,qwen3 -t 0 -o live\nRecord me")
    kernel.run("%config LLMMagics.replay = 'replay'")
    before = len(chats(sim))
    ex = kernel.run("%%llm -m llama3.2,qwen3 -t 0 -o again\nRecord me")
    assert ex.status == "ok", ex.error
    assert len(chats(sim)) == before  # nothing sent
    page = table(ex)
    assert page.count("↺ replayed") == 2
    assert cells(page)[:2] == cells(table(live))[:2]
    assert kernel.value("again['status'].tolist()") == ["replayed", "replayed"]
    assert kernel.value("(again['answer'] == live['answer']).all().item()") is True
    assert kernel.value("(again['ttft_s'] == live['ttft_s']).all().item()") is True  # recorded


def test_interrupt_stops_every_column_and_keeps_what_arrived(kernel, sim):
    sim.token_delay = 0.05
    kernel.run("r = None")
    msg_id = kernel.kc.execute("%%llm -m llama3.2,qwen3 -o r\nA long story [[tokens=400]]")
    deadline = time.monotonic() + 10
    while sim.active < 2:
        assert time.monotonic() < deadline, "the two requests never ran"
        time.sleep(0.02)
    time.sleep(0.5)
    kernel.interrupt()
    ex = kernel.collect(msg_id)
    assert ex.error["ename"] == "KeyboardInterrupt"
    assert sim.wait_for_disconnects(2, timeout=2.0), "a stream was left open"
    rows = kernel.value("r[['status', 'answer']].values.tolist()")
    assert [s for s, _ in rows] == ["interrupted", "interrupted"]
    assert all(5 < len(a.split()) < 400 for _, a in rows)  # what arrived is kept
    page = table(ex)
    assert page.count("interrupted — partial reply") == 2
    assert kernel.run("print(6 * 7)").stdout.strip() == "42"


def test_options_a_comparison_cannot_take(kernel, sim):
    ex = kernel.run("%%llm -m llama3.2,qwen3 -s chat --new --code\nHi")
    assert ex.status == "error" and "takes no -s, --new, --code" in ex.stderr and not chats(sim)


def test_num_ctx_reaches_every_column(kernel, sim):
    ex = kernel.run("%%llm -m llama3.2,qwen3 --num-ctx 8192\nHi [[tokens=3]]")
    assert ex.status == "ok", ex.error
    assert [r.body["options"]["num_ctx"] for r in chats(sim)] == [8192, 8192]
