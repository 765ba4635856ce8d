"""Prompts that fit, below the kernel: the context size Ollama requests get (real provider at
the simulator), the DataFrame forms, the estimate's pre-send check and the length limit."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from gleitzeit_nb.app.connections import Connections
from gleitzeit_nb.app.fit import check_fit, length_limit
from gleitzeit_nb.app.interpolate import interpolate
from gleitzeit_nb.app.settings import SETTINGS
from gleitzeit_nb.app.tables import summary
from gleitzeit_nb.app.tokens import IMAGE_TOKENS, estimate_messages, estimate_tokens
from gleitzeit_nb.core.backend import ChatRequest
from gleitzeit_nb.core.errors import ContextLengthError
from gleitzeit_nb.providers import OllamaProvider
from gleitzeit_nb.testing import OllamaSimulator
from gleitzeit_nb.testing.models import DEFAULT_MODELS, ModelSpec

import pandas as pd  # noqa: E402  (test extra)
import numpy as np  # noqa: E402  (test extra)

LONG_MODEL = ModelSpec("long:latest", context_length=32768, parameters="num_ctx 16384")


@pytest.fixture
async def ollama(monkeypatch):
    monkeypatch.delenv("OLLAMA_CONTEXT_LENGTH", raising=False)
    with OllamaSimulator(models=[*DEFAULT_MODELS, LONG_MODEL]) as sim:
        async with OllamaProvider(base_url=sim.url, retry_backoff=0.01) as provider:
            yield sim, provider


async def test_ollama_context_follows_ollamas_order(ollama, monkeypatch):
    sim, provider = ollama
    default = await provider.context_size("llama3.2:latest")
    assert (default.tokens, default.adjustable, default.trained) == (4096, True, 131072)
    assert "default" in default.source
    asked = await provider.context_size("llama3.2:latest", num_ctx=16384)
    assert (asked.tokens, asked.source) == (16384, "this request's num_ctx")
    too_much = await provider.context_size("llama3.2:latest", num_ctx=1_000_000)
    assert too_much.tokens == 131072 and "trained maximum" in too_much.source
    modelfile = await provider.context_size("long:latest")
    assert (modelfile.tokens, modelfile.source) == (16384, "the model's num_ctx parameter")
    capped = await provider.context_size("nomic-embed-text:latest")  # num_ctx 8192, trained 2048
    assert capped.tokens == 2048
    monkeypatch.setenv("OLLAMA_CONTEXT_LENGTH", "8192")  # a loopback server's environment
    assert (await provider.context_size("llama3.2:latest")).tokens == 8192
    await provider.handle_request("chat", {"model": "qwen3:latest",
                                           "messages": [{"role": "user", "content": "hi"}]})
    loaded = await provider.context_size("qwen3:latest")  # /api/ps says what it runs with
    assert (loaded.tokens, loaded.source) == (4096, "the loaded model (ollama ps)")


async def test_check_refuses_only_beyond_the_estimates_error(ollama):
    sim, provider = ollama
    conn = Connections()

    def request(words: int, **kw) -> ChatRequest:
        return ChatRequest(model="llama3.2:latest",
                           messages=[{"role": "user", "content": "word " * words}], **kw)

    # 4,096 tokens, 256 kept for the reply: 3,840 of room; refused beyond 1.4 x room
    assert 3840 < estimate_messages(request(3300).messages) * 1.25 < 3840 * 1.4
    with pytest.warns(UserWarning, match=r"close to the context size of 4,096"):
        await check_fit(conn, provider, request(3300))
    with pytest.raises(ContextLengthError) as err:
        await check_fit(conn, provider, request(6000))
    message = str(err.value)
    assert f"about {err.value.tokens:,} tokens" in message and "4,096 tokens" in message
    assert "--num-ctx 8192" in message and "nothing was sent" in message
    assert "a shorter prompt" in message and ":summary}" not in message  # no table in it
    asked = request(6000, extra={"num_ctx": 8192})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (await check_fit(conn, provider, asked)).tokens == 8192
    assert not [r for r in sim.requests if r.path == "/api/chat"]


async def test_only_a_table_put_in_as_rows_is_suggested_as_a_summary(ollama):
    _, provider = ollama
    big = big_frame(2_000)
    with pytest.warns(UserWarning, match="puts the whole table"):
        rows = interpolate("Look: {big:full}", {"big": big})
    in_summary = interpolate("Look: {big:summary} " + "word " * 6000, {"big": big})

    async def refusal(content: str) -> str:
        request = ChatRequest(model="llama3.2:latest",
                              messages=[{"role": "user", "content": content}])
        with pytest.raises(ContextLengthError) as err:
            await check_fit(Connections(), provider, request)
        return str(err.value)

    assert "a shorter prompt ({big:summary} or {big:head(20)} instead of the rows)" \
        in await refusal(rows)
    assert ":summary}" not in await refusal(in_summary)


def test_a_wide_frame_s_summary_stays_within_the_budget():
    wide = pd.DataFrame(np.random.default_rng(0).random((10_000, 100)),
                        columns=[f"column_{i}" for i in range(100)])
    wide["note"] = "a very long cell text " * 20
    text = summary(wide, "wide")
    assert estimate_tokens(text) <= SETTINGS.table_budget
    assert "10,000 rows × 101 columns" in text and "more columns" in text
    assert "a very long cell text " * 3 not in text  # long cells are cut
    assert estimate_tokens(summary(wide, "wide", budget=600)) <= 600


async def test_refusal_beyond_the_trained_maximum_names_it(ollama):
    sim, provider = ollama
    request = ChatRequest(model="long:latest", extra={"num_ctx": 32768},
                          messages=[{"role": "user", "content": "word " * 60_000}])
    with pytest.raises(ContextLengthError, match=r"'long:latest' takes at most 32,768 tokens"):
        await check_fit(Connections(), provider, request)


def test_estimate_counts_images_history_and_tools():
    text = [{"role": "user", "content": "Describe this."}]
    image = [{"role": "user", "content": "Describe this.", "images": ["aGk="]}]
    assert estimate_messages(image) - estimate_messages(text) == IMAGE_TOKENS
    tools = [{"type": "function", "function": {"name": "top_rows", "parameters": {}}}]
    assert estimate_messages(text, tools) > estimate_messages(text)
    assert estimate_tokens("") == 0 and estimate_tokens("你好世界") < estimate_tokens("1234567890")


@pytest.mark.parametrize("stats, max_tokens, expected", [
    ({"finish_reason": "length", "output_tokens": 40}, 40, "max_tokens"),
    ({"finish_reason": "length", "output_tokens": 12}, 40, "context"),
    ({"finish_reason": "length", "output_tokens": 12}, None, "context"),
    ({"finish_reason": "length"}, 40, None),
    ({"finish_reason": "stop", "output_tokens": 40}, 40, None)])
def test_length_limit(stats, max_tokens, expected):
    assert length_limit(stats, max_tokens) == expected


def big_frame(rows: int = 10_000):
    return pd.DataFrame({"id": range(rows), "region": ["north", "south"] * (rows // 2),
                         "amount": [i * 0.5 for i in range(rows)]})


def test_a_big_dataframe_becomes_a_summary_with_a_warning_at_the_caller():
    big = big_frame()
    with pytest.warns(UserWarning, match=r"\{big\} is a table of about [\d,]+ tokens") as caught:
        text = interpolate("Which region sells more?\n{big}", {"big": big})
    assert caught[0].filename == __file__  # the caller's line, not ours
    assert "[Summary of the DataFrame big (10,000 rows × 3 columns), not the whole table. " \
           "{big:full} sends every row.]" in text
    assert "describe():" in text and "first 5 rows:" in text and "9999" in text
    assert len(text.splitlines()) < 40 and len(text) < 3000


def test_explicit_table_forms():
    big = big_frame()
    with pytest.warns(UserWarning, match=r"\{big:full\} puts the whole table"):
        full = interpolate("{big:full}", {"big": big})
    assert full == big.to_string()
    assert interpolate("{big:head(3)}", {"big": big}) == big.head(3).to_string()
    assert interpolate("{big:tail(2)}", {"big": big}) == big.tail(2).to_string()
    small = big.head(4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert interpolate("{small}", {"small": small}) == small.to_string()  # within budget
        assert interpolate("{small:summary}", {"small": small}) == summary(small, "small")
        series = interpolate("{s:summary}", {"s": big["amount"]})
    assert "Series s (10,000 values)" in series and "dtypes:\nfloat64" in series


def test_the_budget_is_a_setting():
    frame = big_frame(40)
    budget = SETTINGS.table_budget
    try:
        SETTINGS.table_budget = 50
        with pytest.warns(UserWarning, match=r"table_budget"):
            assert "Summary of the DataFrame" in interpolate("{frame}", {"frame": frame})
    finally:
        SETTINGS.table_budget = budget
    assert interpolate("{frame}", {"frame": frame}) == frame.to_string()


SUMMARY_SCRIPT = """
import sys, json
for name in ("tabulate", "jinja2"):
    sys.modules[name] = None  # as if not installed
import pandas as pd
from gleitzeit_nb.app.tables import summary
frame = pd.DataFrame({"id": range(500), "region": ["north", "south"] * 250,
                      "amount": [i * 0.5 for i in range(500)]})
print(json.dumps(summary(frame, "frame")))
"""


def test_the_summary_is_the_same_without_optional_packages():
    """Replay keys hash the prompt: the summary must not depend on tabulate or jinja2."""
    out = subprocess.run([sys.executable, "-c", SUMMARY_SCRIPT], capture_output=True, text=True,
                         check=True)
    frame = pd.DataFrame({"id": range(500), "region": ["north", "south"] * 250,
                          "amount": [i * 0.5 for i in range(500)]})
    assert json.loads(out.stdout) == summary(frame, "frame")
