"""``batch(..., tools=)`` against the simulator over loopback, on both APIs: every row its own
tool conversation (answers in order, each from its own results, schemas in the bodies), the
approval policies a batch takes, the async twin, DataFrames, record/replay, ``%llm_batch
--tools``."""

from __future__ import annotations

import inspect
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError

import gleitzeit_nb
from gleitzeit_nb.app.settings import SETTINGS
from gleitzeit_nb.batch import run_batch, run_batch_async
from gleitzeit_nb.errors import CapabilityError, InvalidParamsError
from gleitzeit_nb.magics.batch_magic import llm_batch_magic
from gleitzeit_nb.replay import current
from gleitzeit_nb.testing import OllamaSimulator
from .sim_data import chat_bodies as chats

CITIES = {"Paris": 21, "Oslo": 12, "Lima": 19, "Cairo": 30}
#: Each row's model calls ``temperature`` for its own city (the simulator's directive).
TEMPLATE = 'Weather in {x}? [[call:temperature {{"city": "{x}"}}]]'
RAN: list[str] = []


def temperature(city: str) -> str:
    """Today's temperature in a city.

    Args:
        city: The city's name.
    """
    RAN.append(city)
    return f"{city} has {CITIES[city]} C"


@pytest.fixture(autouse=True)
def quiet(monkeypatch):
    monkeypatch.setenv("GLEITZEIT_DISPLAY", "final")
    monkeypatch.delenv("OLLAMA_NUM_PARALLEL", raising=False)
    RAN.clear()


@pytest.fixture(params=["ollama", "openai"])
def host(request, sim) -> str:
    return sim.url + ("/v1" if request.param == "openai" else "")


def test_four_rows_each_answer_from_its_own_tool_results(sim, host):
    out = gleitzeit_nb.batch(list(CITIES), TEMPLATE, model="llama3.2", host=host,
                             tools=[temperature], progress=False)
    assert out.complete and not out.errors
    assert out == [f"Based on temperature: {c} has {t} C" for c, t in CITIES.items()]
    for city, answer, stats in zip(CITIES, out, out.stats):
        (call,) = answer.tool_calls  # the Reply carries the row's calls
        assert (call.name, call.arguments, call.status) == ("temperature", {"city": city}, "ok")
        assert stats["tool_calls"] == answer.tool_calls
    assert sorted(RAN) == sorted(CITIES)
    bodies = chats(sim)
    assert len(bodies) == 8  # two rounds per row
    firsts = [b for b in bodies if b["messages"][-1]["role"] == "user"]
    seconds = [b for b in bodies if b["messages"][-1]["role"] == "tool"]
    assert len(firsts) == len(seconds) == 4
    for body in firsts:
        (schema,) = body["tools"]
        assert schema["function"]["name"] == "temperature"
        assert schema["function"]["parameters"]["properties"]["city"]["type"] == "string"
    for body in seconds:  # each row's second request carries its own city's result
        city = body["messages"][0]["content"].split()[2].rstrip("?")
        assert body["messages"][-1]["content"] == f"{city} has {CITIES[city]} C"
        assert body["tools"][0]["function"]["name"] == "temperature"


async def test_async_twin_same_signature_and_result(sim, host):
    assert inspect.signature(run_batch_async) == inspect.signature(run_batch)
    assert {"tools", "approve", "max_tool_rounds"} <= set(inspect.signature(run_batch).parameters)
    out = await run_batch_async(list(CITIES), TEMPLATE, model="llama3.2", host=host,
                                tools=[temperature], progress=False)
    assert out == [f"Based on temperature: {c} has {t} C" for c, t in CITIES.items()]
    assert [a.tool_calls[0].arguments["city"] for a in out] == list(CITIES)


def test_a_function_decides_and_a_refusal_reaches_that_rows_model(sim, host):
    seen = []

    async def only_warm(run) -> bool:  # async policies are awaited
        seen.append(run.name)
        return run.arguments["city"] != "Oslo"

    out = gleitzeit_nb.batch(list(CITIES), TEMPLATE, model="llama3.2", host=host,
                             tools=[temperature], approve=only_warm, progress=False)
    assert seen == ["temperature"] * 4 and "Oslo" not in RAN
    assert out[1].tool_calls[0].status == "refused"
    assert out[1].startswith("Based on temperature: Error: the user refused this call")
    assert out[0] == "Based on temperature: Paris has 21 C"


def test_always_is_refused_before_any_request(sim, monkeypatch):
    with pytest.raises(InvalidParamsError, match="approve='always' cannot work in a batch") as err:
        gleitzeit_nb.batch(list(CITIES), TEMPLATE, model="llama3.2", host=sim.url,
                           tools=[temperature], approve="always", progress=False)
    assert "approve='never'" in str(err.value) and "a function" in str(err.value)
    monkeypatch.setattr(SETTINGS, "tool_approval", "always")
    with pytest.raises(InvalidParamsError, match="LLMMagics.tool_approval"):
        gleitzeit_nb.batch(list(CITIES), TEMPLATE, model="llama3.2", host=sim.url,
                           tools=[temperature], progress=False)
    # without tools there is nothing to approve: the setting does not matter
    assert len(gleitzeit_nb.batch(["hi"], model="llama3.2", host=sim.url, progress=False)) == 1
    with pytest.raises(InvalidParamsError, match="max_tool_rounds"):
        gleitzeit_nb.batch(["hi"], model="llama3.2", host=sim.url, tools=[temperature],
                           approve="never", max_tool_rounds=0, progress=False)
    assert len(chats(sim)) == 1


def test_dataframe_keeps_replies_and_gets_a_tool_calls_column(sim, host):
    df = pd.DataFrame({"city": list(CITIES)}, index=list("abcd"))
    out = gleitzeit_nb.batch(df, 'Weather in {city}? [[call:temperature {{"city": "{city}"}}]]',
                             model="llama3.2", host=host, tools=[temperature], progress=False)
    assert list(out.index) == list("abcd") and out["error"].isna().all()
    assert out.loc["c", "answer"] == "Based on temperature: Lima has 19 C"
    assert out.loc["c", "answer"].tool_calls[0].arguments == {"city": "Lima"}
    assert [runs[0].arguments["city"] for runs in out["tool_calls"]] == list(CITIES)


def test_a_model_without_tools_stops_the_batch(sim, host):
    with pytest.raises(CapabilityError, match="tools"):
        gleitzeit_nb.batch(list(CITIES), TEMPLATE, model="llava", host=host,
                           tools=[temperature], progress=False)
    assert RAN == []


def test_tool_rows_record_and_replay(tmp_path, monkeypatch):
    monkeypatch.setenv("GLEITZEIT_STORE", str(tmp_path / "rec"))
    monkeypatch.setenv("GLEITZEIT_REPLAY", "record")
    try:
        with OllamaSimulator() as sim:
            url = sim.url
            live = gleitzeit_nb.batch(list(CITIES), TEMPLATE, model="llama3.2", host=url,
                                      tools=[temperature], progress=False)
        assert current().store.count() == 8  # every round of every row
        RAN.clear()
        monkeypatch.setenv("GLEITZEIT_REPLAY", "replay")  # the simulator is gone
        again = gleitzeit_nb.batch(list(CITIES), TEMPLATE, model="llama3.2", host=url,
                                   tools=[temperature], progress=False)
        assert again == live and not again.errors
        assert sorted(RAN) == sorted(CITIES)  # the tools ran again
        assert {a.status for a in again} == {"replayed"}
        assert {s["host"] for s in again.stats} == {"replay"}
    finally:
        monkeypatch.setenv("GLEITZEIT_REPLAY", "off")
        current()


def test_llm_batch_magic_tools_and_approve(sim):
    def not_cairo(run) -> bool:
        return run.arguments["city"] != "Cairo"

    shell = SimpleNamespace(user_ns={"cities": list(CITIES), "temperature": temperature,
                                     "not_cairo": not_cairo, "n": 3})
    SETTINGS.model, saved = "llama3.2", SETTINGS.model
    try:
        llm_batch_magic(shell, f"--host {sim.url} --tools temperature --approve not_cairo "
                               f"--no-progress -o out cities {TEMPLATE}")
    finally:
        SETTINGS.model = saved
    out = shell.user_ns["out"]
    assert out[:3] == [f"Based on temperature: {c} has {t} C" for c, t in list(CITIES.items())[:3]]
    assert out[3].tool_calls[0].status == "refused" and "Cairo" not in RAN
    with pytest.raises(UsageError, match="--tools 'nope' is not defined"):
        llm_batch_magic(shell, "--tools nope cities Hi {x}")
    with pytest.raises(UsageError, match="--approve 'n' is a int"):
        llm_batch_magic(shell, "--tools temperature --approve n cities Hi {x}")
