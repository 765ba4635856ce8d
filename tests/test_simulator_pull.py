"""The simulator's ``/api/pull`` over real loopback HTTP: Ollama's line shapes, resume after a
disconnect, failures in Ollama's words, the pulled model installed; the official client reads it."""

from __future__ import annotations

import json
import time

import httpx
import ollama
import pytest

from gleitzeit_nb.testing import OllamaSimulator
from gleitzeit_nb.testing.pull import LIBRARY, UNKNOWN_MODEL, layers_of


@pytest.fixture(scope="module")
def shared():
    with OllamaSimulator() as sim, httpx.Client(base_url=sim.url, timeout=10) as client:
        yield sim, client


@pytest.fixture
def sim(shared) -> OllamaSimulator:
    shared[0].reset()
    return shared[0]


@pytest.fixture
def api(sim, shared) -> httpx.Client:
    return shared[1]


def pull_lines(api: httpx.Client, model: str, **body) -> list[dict]:
    with api.stream("POST", "/api/pull", json={"model": model, **body}) as resp:
        assert resp.status_code == 200 and resp.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line) for line in resp.iter_lines() if line]


def tags(api: httpx.Client) -> set[str]:
    return {m["name"] for m in api.get("/api/tags").json()["models"]}


def test_pull_streams_ollamas_lines_and_installs_the_model(sim, api):
    sim.registry.speed = 2e9
    assert "qwen3:0.6b" not in tags(api)
    lines = pull_lines(api, "qwen3:0.6b")
    assert lines[0] == {"status": "pulling manifest"}
    assert [line["status"] for line in lines[-3:]] == ["verifying sha256 digest",
                                                      "writing manifest", "success"]
    layers = layers_of("qwen3:0.6b", LIBRARY["qwen3:0.6b"])
    progress = [line for line in lines if "digest" in line]
    assert [d for d in dict.fromkeys(p["digest"] for p in progress)] == \
        [f"sha256:{layer.digest}" for layer in layers]  # one layer after the other
    weights = [p for p in progress if p["digest"] == f"sha256:{layers[0].digest}"]
    assert "completed" not in weights[0]  # Go's omitempty: no "completed": 0
    assert weights[0]["status"] == f"pulling {layers[0].digest[:12]}"
    done = [p["completed"] for p in weights[1:]]
    assert done == sorted(done) and len(done) >= 5 and done[-1] == weights[-1]["total"]
    assert sum(layer.size for layer in layers) == LIBRARY["qwen3:0.6b"]
    assert "qwen3:0.6b" in tags(api)
    assert api.post("/api/chat", json={"model": "qwen3:0.6b", "stream": False,
                                       "messages": [{"role": "user", "content": "hi"}]}).status_code == 200
    # pulled again: every blob is there, so each layer is complete at once
    again = [line for line in pull_lines(api, "qwen3:0.6b") if "digest" in line]
    assert len(again) == 4 and all(p["completed"] == p["total"] for p in again)
    sim.reset()
    assert "qwen3:0.6b" not in tags(api)  # reset uninstalls what pulls installed


def test_disconnect_is_recorded_and_the_next_pull_resumes(sim, api):
    sim.registry.speed = 2e8
    with api.stream("POST", "/api/pull", json={"model": "mistral"}) as resp:
        for line in resp.iter_lines():
            if json.loads(line).get("completed", 0) > 3e8:
                break
    assert sim.wait_for_disconnects(1, timeout=1.0)
    assert sim.disconnects[0].path == "/api/pull" and sim.disconnects[0].chunks_sent > 5
    kept = sim.registry.downloaded("mistral")
    assert sim.registry.history[-1].outcome == "disconnected" and kept > 3e8
    time.sleep(0.2)
    assert sim.registry.downloaded("mistral") == kept  # the download stopped with the client
    sim.registry.speed = 4e9
    lines = pull_lines(api, "mistral:latest")
    first = next(line for line in lines if "digest" in line)
    assert first["completed"] == kept  # continues from the bytes already there
    assert lines[-1] == {"status": "success"} and sim.registry.history[-1].resumed == kept


@pytest.mark.parametrize("failure, words", [
    ("no_network", "dial tcp: lookup registry.ollama.ai"),
    ("disk_full", "no space left on device"),
])
def test_failures_in_ollamas_words(sim, api, failure, words):
    sim.registry.fail_next(failure, at=0.25)
    lines = pull_lines(api, "phi3:mini")
    assert lines[0] == {"status": "pulling manifest"} and words in lines[-1]["error"]
    assert set(lines[-1]) == {"error"}
    if failure == "disk_full":  # what came before the disk filled up is kept
        assert 0.25 * LIBRARY["phi3:mini"] <= sim.registry.downloaded("phi3:mini") < LIBRARY["phi3:mini"]
    assert "phi3:mini" not in tags(api)
    assert pull_lines(api, "phi3:mini")[-1] == {"status": "success"}  # the failure was one-off


def test_unknown_model_invalid_name_and_no_stream(sim, api):
    lines = pull_lines(api, "no-such-model:7b")
    assert lines == [{"status": "pulling manifest"}, {"error": UNKNOWN_MODEL}]
    bad = api.post("/api/pull", json={"model": "two words"})
    assert (bad.status_code, bad.json()) == (400, {"error": "invalid model name"})
    whole = api.post("/api/pull", json={"model": "all-minilm", "stream": False})
    assert (whole.status_code, whole.json()) == (200, {"status": "success"})
    missing = api.post("/api/pull", json={"name": "ghost", "stream": False})
    assert (missing.status_code, missing.json()) == (500, {"error": UNKNOWN_MODEL})
    sim.registry.offer("mine:tiny", 50_000)
    assert pull_lines(api, "mine:tiny")[-1] == {"status": "success"} and "mine:tiny" in tags(api)


def test_official_client_reads_the_progress(sim):
    client = ollama.Client(host=sim.url)
    events = list(client.pull("smollm2:135m", stream=True))
    assert events[0].status == "pulling manifest" and events[-1].status == "success"
    sized = [e for e in events if e.digest]
    assert sized and sized[-1].completed == sized[-1].total
    with pytest.raises(ollama.ResponseError, match="file does not exist"):
        list(client.pull("ghost", stream=True))
