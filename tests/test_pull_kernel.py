"""%llm_pull and gleitzeit_nb.pull in a real kernel against the simulator: the bars' widget state,
interrupt = stream closed, resume, errors, final and terminal modes, the missing-model hint."""

from __future__ import annotations

import time

import pytest

from gleitzeit_nb.testing.pull import LIBRARY, layers_of

from .kernel import magics_kernel

SHARED_SIM = True


@pytest.fixture(scope="module")
def kernel(shared_sim):
    yield from magics_kernel(shared_sim)


@pytest.fixture(autouse=True)
def fresh(kernel):
    kernel.run("%config LLMMagics.display = 'auto'\n%config LLMMagics.host = ''")


def widgets(ex) -> dict[str, list[dict]]:
    """comm id -> the widget's states in order (the opening one, then each update applied)."""
    states: dict[str, list[dict]] = {}
    for m in ex.of_type("comm_open", "comm_msg"):
        state = m["content"]["data"].get("state")
        if state is not None:
            history = states.setdefault(m["content"]["comm_id"], [])
            history.append({**(history[-1] if history else {}), **state})
    return states


def bars(ex) -> dict[str, list[dict]]:
    """The progress bars by their description ("total", or a layer's 12-digit digest)."""
    return {h[-1]["description"]: h for h in widgets(ex).values()
            if h[-1].get("_model_name") == "IntProgressModel"}


def texts(ex) -> list[str]:
    return [h[-1]["value"] for h in widgets(ex).values() if h[-1].get("_model_name") == "HTMLModel"]


def test_pull_shows_bars_that_reach_the_total(kernel, sim):
    sim.registry.speed = 1e9
    kernel.run("%llm_models")  # the models cache now holds the list without the new model
    ex = kernel.run("%llm_pull qwen3:0.6b")
    assert ex.status == "ok", ex.error
    shown = bars(ex)
    size = LIBRARY["qwen3:0.6b"]
    total = shown.pop("total")
    assert total[-1]["value"] == total[-1]["max"] == size and total[-1]["bar_style"] == "success"
    assert sum(0 < s["value"] < size for s in total) >= 3  # it moved, not one final jump
    layers = layers_of("qwen3:0.6b", size)
    assert set(shown) == {layer.digest[:12] for layer in layers}
    assert all(h[-1]["value"] == h[-1]["max"] for h in shown.values())
    assert any("B/s · ETA" in s["value"] for h in widgets(ex).values() for s in h
               if s.get("_model_name") == "HTMLModel")  # the rate was shown on the way
    assert any("done in" in t and "523 MB in 4 layers" in t for t in texts(ex))
    assert any("<b>qwen3:0.6b</b> · pulled" in t for t in texts(ex))
    # the cache was refreshed by the pull: the next lookup needs no request and has the model
    tags_before = sum(r.path == "/api/tags" for r in sim.requests)
    listed = kernel.run("from gleitzeit_nb.app import bridge\n"
                        "from gleitzeit_nb.app.connections import CONNECTIONS\n"
                        "print([m.name for m in bridge.run(CONNECTIONS.models(CONNECTIONS.backend()))])")
    names = listed.stdout
    assert "qwen3:0.6b" in names and sum(r.path == "/api/tags" for r in sim.requests) == tags_before
    chat = kernel.run("%llm -m qwen3:0.6b Hello")
    assert chat.status == "ok", chat.error


def test_interrupt_closes_the_stream_and_the_next_pull_resumes(kernel, sim):
    sim.registry.speed = 2e8
    msg_id = kernel.kc.execute("%llm_pull mistral")
    deadline = time.monotonic() + 15
    while sim.registry.downloaded("mistral") < 3e8 and time.monotonic() < deadline:
        time.sleep(0.02)
    interrupted_at = time.monotonic()
    kernel.interrupt()
    ex = kernel.collect(msg_id)
    assert sim.wait_for_disconnects(1, timeout=1.0), "the pull's stream was not closed"
    gone = sim.disconnects[0]
    assert gone.path == "/api/pull" and gone.time - interrupted_at < 1.0
    assert sim.registry.history[-1].outcome == "disconnected"
    kept = sim.registry.downloaded("mistral")
    time.sleep(0.3)
    assert sim.registry.downloaded("mistral") == kept  # the server stopped downloading
    assert ex.error["ename"] == "KeyboardInterrupt" and len(ex.error["traceback"]) <= 3
    assert "%llm_pull mistral resumes it" in ex.error["traceback"][1]
    total = bars(ex)["total"][-1]
    assert total["bar_style"] == "warning" and 0 < total["value"] < total["max"]

    sim.registry.speed = 4e9
    again = kernel.run("%llm_pull mistral")
    assert again.status == "ok", again.error
    total = bars(again)["total"]
    started = next(s["value"] for s in total if s["value"] > 0)
    assert started >= kept > 0  # completed starts where the interrupted pull stopped
    assert total[-1]["value"] == total[-1]["max"] == LIBRARY["mistral:latest"]
    assert sim.registry.history[-1].resumed == kept
    assert any("resumed from" in t for t in texts(again))


def test_unknown_model_error_in_plain_words(kernel, sim):
    ex = kernel.run("%llm_pull no-such-model:7b")
    assert ex.error["ename"] == "PullError"
    first = ex.error["traceback"][0]
    assert "Cannot pull 'no-such-model:7b'" in first and "file does not exist" in first
    assert "ollama.com/library" in first and len(ex.error["traceback"]) == 2
    assert bars(ex)["total"][-1]["bar_style"] == "danger"
    assert any("failed · no such model" in t for t in texts(ex))


def test_disk_full_error_keeps_what_came(kernel, sim):
    sim.registry.fail_next("disk_full", at=0.4)
    ex = kernel.run("%llm_pull phi3:mini")
    assert ex.error["ename"] == "PullError" and "disk of Ollama at" in ex.error["evalue"]
    assert "no space left on device" in ex.error["evalue"]
    assert sim.registry.downloaded("phi3:mini") >= 0.4 * LIBRARY["phi3:mini"]


def test_openai_compatible_server_says_it_cannot_pull(kernel, sim):
    ex = kernel.run(f"%llm_pull qwen3:0.6b --host {sim.url}/v1")
    assert ex.error["ename"] == "PullError"
    assert "cannot download" in ex.error["evalue"] and "GGUF" in ex.error["evalue"]
    assert not ex.of_type("comm_open")  # no bars for a pull that cannot start
    assert not [r for r in sim.requests if "pull" in r.path]


def test_final_mode_shows_one_result_line(kernel, sim):
    kernel.run("%config LLMMagics.display = 'final'")
    ex = kernel.run("%llm_pull smollm2:135m")
    assert ex.status == "ok" and not ex.of_type("comm_open", "comm_msg", "stream")
    outputs = ex.of_type("display_data", "execute_result")
    assert len(outputs) == 1
    assert outputs[0]["content"]["data"]["text/plain"].startswith(
        f"Pulled smollm2:135m on {sim.url}: 271 MB in 4 layers")


def test_terminal_lines_and_the_async_twin(kernel, sim):
    sim.registry.speed = 1e9
    ex = kernel.run("import gleitzeit_nb\n"
                    "r = gleitzeit_nb.pull('tinyllama', progress='terminal')\nprint(r.total)")
    assert ex.stdout.strip() == str(LIBRARY["tinyllama:latest"])
    lines = ex.stderr.replace("\r", "\n").splitlines()
    assert lines[0] == "pulling manifest" and "verifying sha256 digest" in lines
    assert any(line.startswith("pulling ") and "100% ▕" in line for line in lines)
    assert lines[-1].startswith("success: tinyllama, 638 MB in 4 layers")
    ex = kernel.run("r = await gleitzeit_nb.pull_async('gemma3:1b', progress=False)\nprint(r)")
    assert ex.status == "ok" and ex.stdout.startswith("Pulled gemma3:1b") and not ex.stderr


def test_missing_model_error_offers_llm_pull_on_ollama_only(kernel, sim):
    ex = kernel.run("%llm -m llama9 Hello")
    assert ex.error["ename"] == "ModelNotFoundError"
    assert ex.error["traceback"][1].startswith(
        "In this notebook: %llm_pull llama9:latest downloads it, with progress.")
    ex = kernel.run(f"%llm -m llama9 --host {sim.url}/v1 Hello")  # OpenAI-compatible: no pull
    assert ex.error["ename"] == "ModelNotFoundError"
    assert "%llm_pull" not in "\n".join(ex.error["traceback"])


def test_help_lists_the_options(kernel, sim):
    for cell in ("%llm_pull?", "%llm_pull --help"):
        ex = kernel.run(cell)
        shown = "".join(p.get("data", {}).get("text/plain", "")
                        for p in ex.reply["content"].get("payload", []) if p.get("source") == "page")
        assert "Download a model onto the server" in shown and "--host NAME_OR_URL" in shown
    assert not [r for r in sim.requests if r.path.endswith("pull")]
    usage = kernel.run("%llm_pull")
    assert usage.status == "error" and "UsageError: the following arguments are required: model" \
        in usage.stderr
