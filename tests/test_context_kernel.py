"""Prompts that fit, in a real kernel against the simulator: DataFrames within a budget, the
context size setting in request bodies, the refusal of a prompt that cannot fit, the footer."""

from __future__ import annotations

import pytest

from gleitzeit_nb.testing.models import DEFAULT_MODELS, ModelSpec

from .kernel import start_kernel
from .sim_data import chat_bodies as chats


SHARED_SIM = True
#: A model trained for a long context, to send a 10,000-row table whole.
SIM_OPTIONS = {"models": [*DEFAULT_MODELS, ModelSpec("long:latest", context_length=1 << 20)]}
BIG = ("big = pd.DataFrame({'id': range(10_000), 'region': ['north', 'south'] * 5_000, "
       "'amount': [i * 0.5 for i in range(10_000)]})")


@pytest.fixture(scope="module")
def kernel(shared_sim):
    k = start_kernel(shared_sim.url, f"%load_ext gleitzeit_nb\nimport gleitzeit_nb, pandas as pd\n{BIG}",
                     GLEITZEIT_DISPLAY="final")
    yield k
    k.shutdown()


@pytest.fixture(autouse=True)
def fresh(kernel):
    kernel.run("%llm_reset\n%config LLMMagics.model = 'llama3.2:latest'\n"
               "%config LLMMagics.num_ctx = None")


def test_a_big_dataframe_is_sent_as_a_summary(kernel, sim):
    ex = kernel.run("%%llm\nWhich region sells more?\n{big}")
    assert ex.error is None, ex.error
    sent = chats(sim)[-1]["messages"][-1]["content"]
    assert "[Summary of the DataFrame big (10,000 rows × 3 columns), not the whole table. " \
           "{big:full} sends every row.]" in sent
    assert "describe():" in sent and "last 5 rows:" in sent
    assert len(sent.splitlines()) < 40  # not 10,000 rows
    # the warning says what happened and what to do, at the cell (not at a line of ours)
    assert "UserWarning: {big} is a table of about" in ex.stderr and "{big:full}" in ex.stderr
    assert "gleitzeit_nb/" not in ex.stderr and "ipykernel_" in ex.stderr


def test_full_sends_the_table_whole_with_a_warning(kernel, sim):
    ex = kernel.run("%%llm -m long --num-ctx 524288\nWhich region sells more?\n{big:full}")
    assert ex.error is None, ex.error
    body = chats(sim)[-1]
    whole = kernel.value("big.to_string()")
    assert body["messages"][-1]["content"] == f"Which region sells more?\n{whole}"
    assert body["options"]["num_ctx"] == 524288
    assert "UserWarning: {big:full} puts the whole table into the prompt: about" in ex.stderr


def test_head_and_tail_forms(kernel, sim):
    ex = kernel.run("%%llm\nFirst rows:\n{big:head(3)}\nLast:\n{big:tail(2)}")
    assert ex.error is None and not ex.stderr, (ex.error, ex.stderr)
    sent = chats(sim)[-1]["messages"][-1]["content"]
    assert sent == ("First rows:\n" + kernel.value("big.head(3).to_string()") + "\nLast:\n"
                    + kernel.value("big.tail(2).to_string()"))


def test_num_ctx_reaches_the_request_options(kernel, sim):
    runs = ["%%llm --num-ctx 8192\nhi",
            "%config LLMMagics.num_ctx = 16384",
            "%%llm\nhi",
            "r = gleitzeit_nb.chat('hi', num_ctx=12288, display=None)",
            "b = gleitzeit_nb.batch(['a', 'b'], num_ctx=6144, progress=False)",
            "items = ['x']\n%llm_batch --num-ctx 3072 --no-progress items",
            "1 / 0",
            "%llm_fix --num-ctx 24576"]
    for code in runs:
        ex = kernel.run(code)
        assert ex.error is None or code == "1 / 0", (code, ex.error)
    kernel.run("%config LLMMagics.num_ctx = None")
    kernel.run("%%llm\nhi")
    sent = [body.get("options", {}).get("num_ctx") for body in chats(sim)]
    assert sent == [8192, 16384, 12288, 6144, 6144, 3072, 24576, None]


@pytest.mark.parametrize("line", ["%%llm --num-ctx 0\nhi", "%llm_fix --num-ctx 0",
                                  "%llm_batch --num-ctx -1 items"])
def test_a_context_size_below_one_names_the_option_and_a_valid_value(kernel, sim, line):
    kernel.run("items = ['x']\n1 / 0")
    ex = kernel.run(line)
    assert ex.status == "error" and "argument --num-ctx:" in ex.stderr
    assert "is not a context size: give it in tokens, e.g. --num-ctx 8192" in ex.stderr
    assert chats(sim) == []


def test_a_prompt_that_cannot_fit_is_refused_before_sending(kernel, sim):
    kernel.run("long = 'word ' * 20_000")
    ex = kernel.run("%%llm\nSummarise: {long}")
    error = ex.error
    assert ex.status == "error" and error["ename"] == "ContextLengthError"
    assert error["evalue"].startswith("The prompt is about 20,0")
    assert "more than fits the context size of 4,096 tokens (Ollama's default" in error["evalue"]
    assert "nothing was sent" in error["evalue"] and "--num-ctx 32768" in error["evalue"]
    assert "a shorter prompt" in error["evalue"] and ":summary}" not in error["evalue"]
    assert len(error["traceback"]) <= 3  # one readable line, not a traceback
    assert chats(sim) == []
    ex = kernel.run("%%llm --num-ctx 32768\nSummarise: {long}")  # the fix works
    assert ex.error is None and chats(sim)[-1]["options"]["num_ctx"] == 32768


def test_the_footer_names_the_limit_hit(kernel, sim):
    ex = kernel.run("%%llm --max-tokens 3\nTell me more [[tokens=10]]")
    assert ex.error is None
    assert "stopped: max_tokens reached (raise --max-tokens / max_tokens=)" in ex.text()
