"""Pulling through the seam: OllamaProvider.pull against the simulator, the errors in plain words,
the OpenAI-compatible refusal, closing = stopping, run_pull's cache refresh, the tracker's sums."""

from __future__ import annotations

import asyncio

import pytest

from gleitzeit_nb.app.connections import Connections
from gleitzeit_nb.app.pull import run_pull
from gleitzeit_nb.app.settings import Settings
from gleitzeit_nb.core.errors import InvalidParamsError, PullError
from gleitzeit_nb.core.pull import PullEvent, PullTracker, human_bytes
from gleitzeit_nb.providers import OllamaProvider, OpenAICompatibleProvider
from gleitzeit_nb.testing import OllamaSimulator
from gleitzeit_nb.testing.pull import LIBRARY


async def events_of(provider, model: str) -> list[PullEvent]:
    return [event async for event in provider.pull(model)]


async def test_events_are_neutral_and_sum_to_the_model(provider, sim):
    events = await events_of(provider, "qwen3:0.6b")
    assert events[0] == PullEvent("pulling manifest") and events[-1].success
    tracker = PullTracker("qwen3:0.6b")
    for event in events:
        tracker.add(event)
    assert tracker.finished and tracker.total == tracker.completed == LIBRARY["qwen3:0.6b"]
    assert len(tracker.layers) == 4 and tracker.resumed == 0
    first = next(e for e in events if e.digest)
    assert first.completed == 0 and first.total > 0  # omitted by the server, 0 here
    assert all(e.completed is None for e in events if not e.digest)
    assert [r.body for r in sim.requests if r.path == "/api/pull"] == \
        [{"model": "qwen3:0.6b", "stream": True}]


@pytest.mark.parametrize("model, setup, reason, words", [
    ("ghost:7b", None, "unknown_model",
     ["'ghost:7b'", "found no such model", "file does not exist", "ollama.com/library"]),
    ("phi3:mini", "disk_full", "disk_full",
     ["disk of Ollama at", "is full", "no space left on device", "Free space", "resumes"]),
    ("phi3:mini", "no_network", "no_network",
     ["cannot reach the model registry", "no such host", "internet connection", "resumes"]),
    ("two words", None, "invalid_name", ["refused the name", "invalid model name", "NAME:TAG"]),
])
async def test_errors_say_what_where_and_the_fix(provider, sim, model, setup, reason, words):
    if setup:
        sim.registry.fail_next(setup)
    with pytest.raises(PullError) as info:
        await events_of(provider, model)
    error = info.value
    assert error.reason == reason and error.url == sim.url and error.model == model
    for word in words:
        assert word in error.message
    if reason != "invalid_name":
        assert error.server_error in error.message  # the server's own words are kept


async def test_openai_compatible_server_cannot_pull(sim):
    async with OpenAICompatibleProvider(base_url=sim.url + "/v1") as provider:
        sim.reset()
        with pytest.raises(PullError) as info:
            provider.pull("qwen3:0.6b")
    message = info.value.message
    assert info.value.reason == "unsupported" and not provider.can_pull
    assert f"{sim.url}/v1" in message and "cannot download" in message
    assert "GGUF" in message and "Ollama server" in message
    assert sim.requests == []  # said before any request


async def test_empty_name_is_refused_before_any_request(provider, sim):
    with pytest.raises(InvalidParamsError, match="Name the model"):
        provider.pull("  ")
    assert [r.path for r in sim.requests] == ["/api/version"]  # (the fixture's health check)


async def test_closing_the_iterator_stops_the_download(provider, sim):
    sim.registry.speed = 1e8
    pulling = provider.pull("mistral")
    async for event in pulling:
        if (event.completed or 0) > 2e8:
            break
    await pulling.aclose()
    assert await asyncio.to_thread(sim.wait_for_disconnects, 1, 1.0)
    kept = sim.registry.downloaded("mistral")
    await asyncio.sleep(0.2)
    assert sim.registry.downloaded("mistral") == kept and sim.registry.history[-1].outcome == "disconnected"


async def test_cancelled_run_pull_closes_the_stream_and_resumes(sim):
    conn = Connections(Settings(host=sim.url))
    sim.registry.speed = 1e8
    tracker = PullTracker("mistral")
    task = asyncio.ensure_future(run_pull("mistral", tracker=tracker, connections=conn))
    while tracker.completed < 2e8:
        await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(sim.wait_for_disconnects, 1, 1.0)
    sim.registry.speed = 4e9
    seen: list[int] = []
    result = await run_pull("mistral", connections=conn,
                            on_progress=lambda t, layer: seen.append(t.completed))
    assert result.resumed >= tracker.completed > 0 and seen[1] >= tracker.completed
    assert result.total == LIBRARY["mistral:latest"] and "resumed from" in str(result)


async def test_run_pull_refreshes_the_models_cache(sim):
    conn = Connections(Settings(host=sim.url))
    backend = conn.backend()
    before = [m.name for m in await conn.models(backend)]
    assert "smollm2:135m" not in before
    result = await run_pull("smollm2:135m", connections=conn)
    tags_calls = sum(r.path == "/api/tags" for r in sim.requests)
    cached = [m.name for m in await conn.models(backend)]  # within max_age: no new request
    assert "smollm2:135m" in cached and sum(r.path == "/api/tags" for r in sim.requests) == tags_calls
    assert str(result).startswith("Pulled smollm2:135m on " + sim.url)
    assert await conn.pick_model(backend, "completion")  # the list is usable


async def test_a_dropped_connection_says_pull_again():
    with OllamaSimulator() as sim:
        sim.registry.speed = 1e8
        async with OllamaProvider(base_url=sim.url, retry_backoff=0.01) as provider:
            pulling = provider.pull("mistral")
            with pytest.raises(PullError) as info:
                async for event in pulling:
                    if (event.completed or 0) > 1e8:
                        await asyncio.to_thread(sim.stop)
    assert info.value.reason == "broken" and info.value.retryable
    assert "while pulling 'mistral'" in info.value.message and "resumes" in info.value.message


def test_tracker_rate_eta_and_bytes():
    tracker = PullTracker("m")
    tracker.add(PullEvent("pulling manifest"))
    assert tracker.layers == {} and tracker.rate() == 0 and tracker.eta() is None
    tracker.add(PullEvent("pulling a", "sha256:" + "a" * 64, 1000, 400))  # resumed layer
    tracker._samples[0] = (tracker._samples[0][0] - 1.0, 400)  # as if a second ago
    tracker.add(PullEvent("pulling a", "sha256:" + "a" * 64, 1000, 600))
    assert tracker.resumed == 400 and tracker.completed == 600 and tracker.total == 1000
    assert 150 < tracker.rate() <= 200 and tracker.eta() == pytest.approx(400 / tracker.rate())
    assert tracker.layers["sha256:" + "a" * 64].short == "a" * 12
    assert [human_bytes(n) for n in (96, 1_429, 522_653_767, 4_113_301_824)] == \
        ["96 B", "1.4 KB", "523 MB", "4.1 GB"]


async def test_no_model_for_the_job_offers_a_pull_where_the_server_can():
    from gleitzeit_nb.core.errors import ModelNotFoundError
    from gleitzeit_nb.magics.pull_magic import pull_hint

    with OllamaSimulator(models=["llama3.2"]) as sim:
        conn = Connections(Settings(host=sim.url))
        with pytest.raises(ModelNotFoundError) as info:
            await conn.pick_model(conn.backend(), "vision")
        assert info.value.pullable and info.value.model == "llava"
        # not the kernel's configured server, so the line names it
        assert pull_hint(info.value) == (f"In this notebook: %llm_pull llava --host {sim.url} "
                                         "downloads it, with progress.")
        async with OpenAICompatibleProvider(base_url=sim.url + "/v1") as openai:
            with pytest.raises(ModelNotFoundError) as info:  # no pull on this API
                await openai.handle_request("chat", {"model": "ghost", "messages": [
                    {"role": "user", "content": "hi"}]})
        assert not info.value.pullable and pull_hint(info.value) is None
