"""Batches in a real kernel: interrupting one, the live progress bar, and the %llm_batch function."""

from __future__ import annotations

import time

import pytest

from .kernel import start_kernel

SHARED_SIM = True
SIM_OPTIONS = {"parallel": 4}


@pytest.fixture(scope="module")
def kernel(shared_sim):
    k = start_kernel(shared_sim.url, "import gleitzeit_nb.batch as B\n"
                     "from gleitzeit_nb.magics.batch_magic import llm_batch_magic\nimport pandas as pd",
                     GLEITZEIT_DISPLAY="live", OLLAMA_NUM_PARALLEL="")
    yield k
    k.shutdown()


def chats(sim) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in sim.requests if r.path == "/api/chat"]


def test_interrupt_closes_every_connection_and_keeps_finished_rows(kernel, sim):
    sim.token_delay = 0.02  # 50 tokens: one second per reply, 4 slots
    msg_id = kernel.kc.execute(
        "r = B.run_batch([f'row {i} [[tokens=50]]' for i in range(16)], model='llama3.2:latest')")
    deadline = time.monotonic() + 15
    while len(chats(sim)) < 6 and time.monotonic() < deadline:  # the first replies are back
        time.sleep(0.01)
    time.sleep(0.3)
    interrupted_at = time.monotonic()
    kernel.interrupt()
    ex = kernel.collect(msg_id)
    assert ex.status == "error" and ex.error["ename"] == "KeyboardInterrupt"

    finished = kernel.value("[i for i, x in enumerate(B.last_result) if x is not None]")
    in_flight = len(chats(sim)) - len(finished)
    assert len(finished) >= 4 and in_flight >= 4
    assert sim.wait_for_disconnects(in_flight, timeout=1.0)
    assert len(sim.disconnects) == in_flight
    assert all(d.time - interrupted_at < 1.0 for d in sim.disconnects)
    assert kernel.value("[B.last_result.complete, len(B.last_result.pending)]") == \
        [False, 16 - len(finished)]
    echoes = kernel.value("[x.split('\"')[1] for x in B.last_result if x]")
    assert echoes == [f"row {i}" for i in finished]
    # The exception carries the same partial result.
    kernel.run("import sys")
    assert kernel.value("sys.last_value.partial is B.last_result") is True

    sim.token_delay = 0.0
    nxt = kernel.run("r2 = B.run_batch(['again [[tokens=3]]'], model='llama3.2:latest')\n"
                     "print(r2[0])")
    assert nxt.status == "ok" and nxt.stdout.startswith('You said: "again".')


def test_live_progress_bar_is_a_widget(kernel, sim):
    ex = kernel.run("r = B.run_batch([f'q{i} [[tokens=3]]' for i in range(5)], "
                    "model='llama3.2:latest')")
    assert ex.status == "ok", ex.error
    views = [m for m in ex.of_type("display_data")
             if "application/vnd.jupyter.widget-view+json" in m["content"]["data"]]
    assert len(views) == 1
    assert not ex.stderr  # no terminal line in a notebook


def test_magic_function_over_a_dataframe_column(kernel, sim):
    ex = kernel.run(
        "df = pd.DataFrame({'review': ['great', 'awful', 'fine']}, index=['x', 'y', 'z'])\n"
        "style = 'one word'\n"
        "llm_batch_magic(get_ipython(), "
        "'df.review -o out -c 2 --no-progress \"Sentiment of {x} in {style} [[tokens=12]]\"')")
    assert ex.status == "ok", ex.error
    assert not ex.of_type("display_data")  # --no-progress
    assert sorted(chats(sim)) == [f"Sentiment of {w} in one word [[tokens=12]]"
                                  for w in ("awful", "fine", "great")]
    assert kernel.value("[type(out).__name__, list(out.index), out.str.split('\"').str[1].tolist()]") \
        == ["Series", ["x", "y", "z"], [f"Sentiment of {w} in one word"
                                        for w in ("great", "awful", "fine")]]


def test_magic_cell_form_with_schema_and_result_as_output(kernel, sim):
    kernel.run("from pydantic import BaseModel\n"
               "class Mood(BaseModel):\n    label: str\n    score: int\n"
               "df2 = pd.DataFrame({'text': ['a', 'b']})")
    ex = kernel.run("llm_batch_magic(get_ipython(), '--schema Mood df2', "
                    "'Classify: {text}')")
    assert ex.status == "ok", ex.error
    html = ex.of_type("execute_result")[0]["content"]["data"]["text/html"]
    assert "label" in html and "score" in html and "output_tokens" in html
    assert sorted(chats(sim)) == ["Classify: a", "Classify: b"]
    bad = kernel.run("llm_batch_magic(get_ipython(), 'nothere -o x')")
    assert "UsageError: 'nothere' is not defined in the notebook" in bad.stderr


def test_magic_takes_model_and_display_from_llm_magics_config(kernel, sim):
    ex = kernel.run("%load_ext gleitzeit_nb\n%config LLMMagics.model = 'qwen3:latest'\n"
                    "%config LLMMagics.display = 'final'\n"
                    "names = ['Ada', 'Bob']\n"
                    "llm_batch_magic(get_ipython(), 'names -o greet Greet {x}')")
    assert ex.status == "ok", ex.error
    assert {r.body["model"] for r in sim.requests if r.path == "/api/chat"} == {"qwen3:latest"}
    assert not ex.of_type("display_data")  # final display mode: no progress bar
    assert kernel.value("[g.split('\"')[1] for g in greet]") == ["Greet Ada", "Greet Bob"]
