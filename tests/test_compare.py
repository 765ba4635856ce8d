"""Comparing models without a kernel: which (model, host) columns a call names, the table's
escaping and blocks, and the columns' results against the simulator."""

from __future__ import annotations

import re
import sys

import pytest

from gleitzeit_nb.app.columns import columns_bundle
from gleitzeit_nb.core.errors import InvalidParamsError
from gleitzeit_nb.notebook.columns import ColumnsDisplay
from gleitzeit_nb.notebook.compare import (COLUMNS, compare_async, parse_targets, requests_for,
                                           result_table)


def test_targets_from_names_hosts_and_pairs():
    assert parse_targets("llama3.2, qwen3:0.6b") == [("llama3.2", None), ("qwen3:0.6b", None)]
    assert parse_targets(["llama3.2", "smollm2@local"], host="gpu1") == [
        ("llama3.2", "gpu1"), ("smollm2", "local")]
    # the same model on several servers: pairs, @, or hosts= (one column per server)
    assert parse_targets([("llama3.2", "gpu1"), ("llama3.2", "http://10.0.0.5:11434")]) == [
        ("llama3.2", "gpu1"), ("llama3.2", "http://10.0.0.5:11434")]
    assert parse_targets(["llama3.2", "qwen3@gpu3"], hosts=["gpu1", "gpu2"]) == [
        ("llama3.2", "gpu1"), ("llama3.2", "gpu2"), ("qwen3", "gpu3")]
    assert parse_targets("llama3.2@http://u:p@10.0.0.5:8000/v1") == [
        ("llama3.2", "http://u:p@10.0.0.5:8000/v1")]
    assert parse_targets(["llama3.2@sha256:abc"]) == [("llama3.2@sha256:abc", None)]


@pytest.mark.parametrize("models", ["", "a,,b", [("a", "h", "x")], []])
def test_bad_model_lists_are_refused(models):
    with pytest.raises(InvalidParamsError):
        parse_targets(models)


class Col:
    def __init__(self, label, text, status="done", stats=None, note="", thinking=""):
        self.label, self.host, self.text, self.status = label, "gpu1", text, status
        self.stats, self.note, self.thinking = stats, note, thinking

    def waited(self):
        return None


def test_table_cells_hold_escaped_text_and_footers():
    evil = "<b>x</b><script>alert(1)</script>\n**two** & <img src=x onerror=alert(2)>"
    cols = [Col("llama3.2", evil, stats={"output_tokens": 12, "generation_seconds": 0.5,
                                         "first_token_seconds": 0.25, "load_seconds": 1.5}),
            Col("qwen<3>", "partial", status="error", note="StreamError: <broke>"),
            Col("smollm2", "old", status="replayed", thinking="hmm <i>")]
    bundle = columns_bundle(cols)
    page = bundle["text/html"]
    tags = set(re.findall(r"</?([a-zA-Z]+)", page))
    assert tags <= {"table", "tr", "th", "td", "b", "br", "span", "sub", "em", "details",
                    "summary", "div"}, tags
    assert "<script" not in page and "<img" not in page and "<i>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#10;**two** &amp; " in page
    assert "<b>qwen&lt;3&gt;</b>" in page and "StreamError: &lt;broke&gt;" in page
    footers = re.findall(r"<sub[^>]*>(.*?)</sub>", page)
    assert footers[0] == "12 tokens · 24.0 tok/s · first token 0.25 s · load 1.5 s"
    assert footers[2] == "replayed" and "↺ replayed" in page
    plain = bundle["text/plain"].split("\n\n")
    assert plain[0].startswith("── llama3.2 · gpu1 ──\n<b>x</b><script>")
    assert "[error: StreamError: <broke>]" in bundle["text/plain"]
    assert ("── smollm2 · gpu1 (replayed) ──\n[thinking]\nhmm <i>\n[/thinking]\nold\n"
            "[replayed]") in bundle["text/plain"]


def test_waiting_columns_say_so():
    page = columns_bundle([Col("llama3.2", "", status="waiting"), Col("qwen3", "hi")])["text/html"]
    assert "waiting for llama3.2" in page and "hi" in page


async def test_columns_run_on_the_simulator_with_stats(sim):
    sim.token_delay = 0.02
    targets = parse_targets(["llama3.2", "qwen3", "missing-model"], host=sim.url)
    table = ColumnsDisplay([(m, h) for m, h in targets], mode=None)
    await compare_async(requests_for("Hello [[tokens=10]]", targets), table)
    frame = result_table(table)
    assert list(frame.columns) == list(COLUMNS)
    ok, failed = frame.iloc[:2], frame.iloc[2]
    assert ok["status"].tolist() == ["done", "done"] and ok["output_tokens"].tolist() == [10, 10]
    assert ok["answer"].str.startswith('You said: "Hello".').all()
    assert ok["answer"].iloc[0] != ok["answer"].iloc[1]  # each model's own text
    assert (ok["ttft_s"] > 0).all() and (ok["tokens_per_s"] > 0).all()
    assert (ok["seconds"] >= ok["ttft_s"]).all()
    assert failed["status"] == "error" and "ModelNotFoundError" in failed["error"]
    assert failed["answer"] == ""
    assert sorted(r.body["model"] for r in sim.requests if r.path == "/api/chat") == [
        "llama3.2:latest", "missing-model:latest", "qwen3:latest"]


async def test_without_pandas_the_result_is_a_list_of_dicts(sim, monkeypatch):
    targets = parse_targets("llama3.2", host=sim.url)
    table = ColumnsDisplay(targets, mode=None)
    await compare_async(requests_for("Hi [[tokens=3]]", targets), table)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas raises ImportError
    rows = result_table(table)
    assert isinstance(rows, list) and list(rows[0]) == list(COLUMNS)
    assert rows[0]["output_tokens"] == 3 and rows[0]["status"] == "done"


def test_one_model_on_two_servers_records_and_replays_each_answer(sim, tmp_path):
    from gleitzeit_nb import replay
    from gleitzeit_nb.notebook.compare import compare
    from gleitzeit_nb.testing import OllamaSimulator

    with OllamaSimulator() as other:
        sim.reply_with("from A")
        other.reply_with("from B")
        replay.configure("record", tmp_path / "store")
        try:
            recorded = compare("Hi", ["llama3.2"], hosts=[sim.url, other.url], display=None)
            replay.configure("replay", tmp_path / "store")
            again = compare("Hi", ["llama3.2"], hosts=[sim.url, other.url], display=None)
        finally:
            replay.configure("off")
    assert recorded["answer"].tolist() == ["from A", "from B"]
    assert again["answer"].tolist() == ["from A", "from B"]
    assert again["status"].tolist() == ["replayed", "replayed"]


def test_ordinary_columns_keep_their_usual_replay_keys(sim):
    reqs = requests_for("Hi", parse_targets(["llama3.2", "qwen3"], host=sim.url))
    assert [r.replay_server for r in reqs] == [None, None]


def test_passwords_in_server_urls_are_never_shown(sim, capsys):
    from gleitzeit_nb.notebook.compare import compare

    secret_url = sim.url.replace("http://", "http://user:s3cret@")
    frame = compare("Hi", [f"llama3.2@{secret_url}", "qwen3"], host=sim.url,
                    num_ctx=4096, display="terminal")
    assert frame["host"].tolist() == [sim.url, sim.url]
    assert frame["status"].tolist() == ["done", "done"]
    assert "s3cret" not in capsys.readouterr().out
    chats = [r.body for r in sim.requests if r.path == "/api/chat"]
    assert [b["options"]["num_ctx"] for b in chats] == [4096, 4096]  # --num-ctx passed on


def test_terminal_shows_a_failed_columns_message(sim, capsys):
    from gleitzeit_nb.notebook.compare import compare

    compare("Hi", ["llama3.2", "missing-model"], host=sim.url, display="terminal")
    out = capsys.readouterr().out
    assert "── missing-model · " in out and "[error: ModelNotFoundError: " in out


def test_cells_keep_indentation_wrap_and_escape_math():
    page = columns_bundle([Col("llama3.2", "def f():\n    return 1  # $x$ \\alpha")])["text/html"]
    assert "white-space:pre-wrap;overflow-wrap:anywhere" in page
    assert "def f():&#10;    return 1  # &#36;x&#36; &#92;alpha" in page
    assert "$" not in page and "\\" not in page
