"""OllamaProvider over real loopback HTTP: results, request bodies, streaming, models, hosts."""

import os

import pytest

from gleitzeit_nb.core import InvalidParamsError
from gleitzeit_nb.providers import OllamaProvider
from gleitzeit_nb.providers.ollama import parse_host

from .conftest import chat_params, generation_requests


async def test_handle_request_result_keys(provider, sim):
    result = await provider.handle_request("chat", chat_params("Say hello", max_tokens=12))
    assert set(result) >= {"response", "model", "tokens_used", "finish_reason", "usage"}
    assert result["response"] and result["model"] == "llama3.2:latest"
    usage = result["usage"]
    assert result["tokens_used"] == usage["output_tokens"] == 12
    assert result["finish_reason"] == usage["finish_reason"] == "length"
    assert usage["input_tokens"] > 0 and usage["generation_seconds"] > 0
    assert "thinking" not in result


async def test_llm_prefix_and_unknown_method(provider, sim):
    assert (await provider.handle_request("llm/chat", chat_params()))["response"]
    with pytest.raises(InvalidParamsError, match="Unsupported method 'llm/translate'"):
        await provider.handle_request("llm/translate", chat_params())
    assert len(generation_requests(sim)) == 1


async def test_request_body_options(provider, sim):
    messages = [{"role": "user", "content": "Q"}]
    await provider.handle_request("chat", {
        "model": "qwen3:latest", "messages": messages, "temperature": 0.3, "max_tokens": 7,
        "top_k": 5, "top_p": 0.9, "repeat_penalty": 1.2, "seed": 42, "num_ctx": 4096, "stop": "###",
        "format": "json", "think": "low", "keep_alive": "10m", "system": "Be terse.",
        "options": {"mirostat": 2, "temperature": 1.9}})
    body = generation_requests(sim)[-1].body
    assert body["options"] == {"mirostat": 2, "temperature": 0.3, "num_predict": 7, "top_k": 5,
                               "top_p": 0.9, "repeat_penalty": 1.2, "seed": 42, "num_ctx": 4096,
                               "stop": ["###"]}
    assert body["messages"] == [{"role": "system", "content": "Be terse."},
                                {"role": "user", "content": "Q"}]
    assert body["format"] == "json" and body["think"] == "low" and body["keep_alive"] == "10m"
    assert body["stream"] is True and body["model"] == "qwen3:latest"
    assert messages == [{"role": "user", "content": "Q"}]  # the caller's list is untouched


def test_ollama_options_from_a_request():
    from gleitzeit_nb.core.requests import chat_request
    from gleitzeit_nb.providers.ollama.payload import build_options

    params = {"temperature": 0.7, "top_k": 40, "top_p": 0.9, "repeat_penalty": 1.1, "seed": 3,
              "num_ctx": 8192, "model": "x", "messages": [{"role": "user", "content": "q"}]}
    assert build_options(chat_request("chat", params)) == {
        "temperature": 0.7, "top_k": 40, "top_p": 0.9, "repeat_penalty": 1.1, "seed": 3,
        "num_ctx": 8192}
    assert build_options(chat_request("chat", {**params, "max_tokens": 9, "temperature": None,
                                               "top_k": None, "top_p": None, "seed": None,
                                               "repeat_penalty": None, "num_ctx": None})) == {
        "num_predict": 9}


async def test_stream_chunks_and_stats(provider, sim):
    stream = await provider.stream_request("chat", chat_params("count [[tokens=30]]"))
    chunks = [c async for c in stream]
    assert len(chunks) == 31 and chunks[-1].done and not any(c.done for c in chunks[:-1])
    text = "".join(c.content for c in chunks)
    assert text == stream.text and len(text.split()) == 30
    usage = chunks[-1].usage
    assert usage is stream.usage
    assert usage.output_tokens == 30 and usage.finish_reason == "stop"
    assert usage.server == "simulator"  # by its Server header
    assert usage.input_tokens > 0 and usage.generation_seconds > 0
    nonstream = await provider.handle_request("chat", chat_params("count [[tokens=30]]"))
    assert nonstream["response"] == text  # the same reply on both paths


async def test_thinking_streamed_and_returned(provider, sim):
    stream = await provider.stream_request("chat", chat_params("Why?", model="qwen3:latest", think=True))
    chunks = [c async for c in stream]
    assert any(c.thinking for c in chunks) and stream.thinking
    first_content = next(i for i, c in enumerate(chunks) if c.content)
    assert all(not c.content for c in chunks[:first_content]) and chunks[0].thinking
    result = await provider.handle_request("chat", chat_params("Why?", model="qwen3:latest", think=True))
    assert result["thinking"] == stream.thinking and result["response"] == stream.text


async def test_file_path_injected(provider, sim, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("Revenue rose 12% in Q3.", encoding="utf-8")
    await provider.handle_request("chat", chat_params("Summarise the notes.", file_path=str(notes)))
    content = generation_requests(sim)[-1].body["messages"][-1]["content"]
    assert content == "Revenue rose 12% in Q3.\n\nSummarise the notes."


@pytest.mark.parametrize("make, text", [
    (lambda d: d / "missing.txt", "does not exist"),
    (lambda d: d, "is a directory"),
    (lambda d: (d / "b.bin").write_bytes(b"\x89PNG\x00\x00data") and d / "b.bin", "looks binary"),
    (lambda d: (d / "l.txt").write_bytes(b"a" * 2_000_001) and d / "l.txt", "limit is 2 MB"),
    (lambda d: (d / "x.txt").write_bytes(b"caf\xe9") and d / "x.txt", "not UTF-8"),
])
async def test_file_path_errors_raise_before_request(provider, sim, tmp_path, make, text):
    path = make(tmp_path)
    with pytest.raises(InvalidParamsError, match=text) as info:
        await provider.handle_request("chat", chat_params(file_path=str(path)))
    assert info.value.param == "file_path"
    with pytest.raises(InvalidParamsError, match=text):
        provider.stream_request("chat", chat_params(file_path=str(path)))
    assert generation_requests(sim) == []  # never pasted into a prompt


async def test_embed(provider, sim):
    one = await provider.handle_request("embed", {"model": "nomic-embed-text", "input": "hello"})
    two = await provider.handle_request("llm/embed", {"model": "nomic-embed-text",
                                                      "input": ["hello", "world"], "dimensions": 8})
    assert len(one["embeddings"]) == 1 and len(one["embeddings"][0]) > 8
    assert len(two["embeddings"]) == 2 and all(len(v) == 8 for v in two["embeddings"])
    body = [r.body for r in sim.requests if r.path == "/api/embed"][-1]
    assert body == {"model": "nomic-embed-text", "input": ["hello", "world"], "dimensions": 8}
    with pytest.raises(InvalidParamsError, match="embed does not stream"):
        provider.stream_request("embed", {"model": "nomic-embed-text", "input": "x"})


async def test_models(provider, sim):
    infos = {i.name: i for i in await provider.list_models()}
    assert "llama3.2:latest" in infos and infos["llava:latest"].can("vision")
    assert infos["llama3.2:latest"].can("vision") is False
    show = await provider.show_model("llava:latest")
    assert "vision" in show["capabilities"]
    await provider.handle_request("chat", chat_params())
    running = await provider.running_models()
    assert [m["name"] for m in running] == ["llama3.2:latest"]
    infos = {i.name: i for i in await provider.list_models()}
    assert infos["llama3.2:latest"].loaded and not infos["llava:latest"].loaded
    assert "vision" in infos["llava:latest"].capabilities
    assert "embedding" in infos["nomic-embed-text:latest"].capabilities
    assert infos["llama3.2:latest"].family and infos["llama3.2:latest"].context_length


async def test_health_check(provider, dead_url):
    assert (await provider.health_check())["healthy"] is True
    async with OllamaProvider(base_url=dead_url, max_retries=0) as dead:
        status = await dead.health_check()
    assert status["healthy"] is False and "ollama serve" in status["error"]


@pytest.mark.parametrize("value, url", [
    (None, "http://127.0.0.1:11434"),
    ("", "http://127.0.0.1:11434"),
    ("1.2.3.4", "http://1.2.3.4:11434"),
    (":56789", "http://127.0.0.1:56789"),
    ("1.2.3.4:56789", "http://1.2.3.4:56789"),
    ("http://1.2.3.4", "http://1.2.3.4:80"),
    ("https://1.2.3.4", "https://1.2.3.4:443"),
    ("https://example.com:56789/", "https://example.com:56789"),
    ("example.com/path/", "http://example.com:11434/path"),
    ("[::1]", "http://[::1]:11434"),
    ("https://[0001:002:003:0004::1]:56789/path", "https://[0001:002:003:0004::1]:56789/path"),
    ("0.0.0.0", "http://127.0.0.1:11434"),
    ('"127.0.0.1:41379"', "http://127.0.0.1:41379"),
    ("'example.com' ", "http://example.com:11434"),
    ("::1", "http://[::1]:11434"),
    ("::", "http://[::1]:11434"),
    ("fe80::2/api", "http://[fe80::2]:11434/api"),
    ("0.0.0.0:1234", "http://127.0.0.1:1234"),
])
def test_parse_host_like_ollama(value, url):
    assert parse_host(value) == url


def test_bad_port_lenient_only_in_the_environment(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "example.com:abc")
    assert OllamaProvider().base_url == "http://example.com:11434"  # as Ollama's tools do
    with pytest.raises(ValueError, match="invalid port"):
        OllamaProvider(base_url="example.com:1143x")  # a typo in code is an error


def test_ollama_host_env(monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:9999")
    assert OllamaProvider().base_url == "http://gpu-box:9999"
    monkeypatch.delenv("OLLAMA_HOST")
    assert OllamaProvider().base_url == "http://127.0.0.1:11434"
    assert OllamaProvider(base_url=":1234").base_url == "http://127.0.0.1:1234"


async def test_loopback_bypasses_proxy_from_env(sim, monkeypatch, dead_url):
    # A proxy that refuses every connection: if it were used, the request would fail.
    monkeypatch.setenv("HTTP_PROXY", dead_url)
    monkeypatch.setenv("HTTPS_PROXY", dead_url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    async with OllamaProvider(base_url=sim.url.replace("127.0.0.1", "localhost")) as p:
        assert (await p.handle_request("chat", chat_params()))["response"]


async def test_file_path_that_is_not_a_regular_file(provider, sim, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidParamsError, match="not a regular file"):
        await provider.handle_request("chat", chat_params(file_path=str(fifo)))
    assert not generation_requests(sim)
